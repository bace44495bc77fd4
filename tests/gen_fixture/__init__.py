"""A fake package for ``tests/test_gen_sync.py``: async classes with the shapes the generator must mirror."""
