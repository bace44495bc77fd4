"""The ``magic-hour-async`` command line.

Commands (``_main``), argument checks (``_args``), error lines and exit statuses (``_errors``), project
output (``_show``), the progress display (``_progress``), and what the commands and the offline demo
(``_demo``) share (``_tools``).
"""
