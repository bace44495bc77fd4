"""The ``magic-hour-async`` command line: commands, the offline demo and the progress display."""
