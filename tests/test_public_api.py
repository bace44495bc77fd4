from __future__ import annotations

import magic_hour_async


def test_all_is_sorted_and_complete() -> None:
    assert magic_hour_async.__all__ == sorted(magic_hour_async.__all__)
    for name in magic_hour_async.__all__:
        assert hasattr(magic_hour_async, name), name


def test_public_names_live_in_the_package() -> None:
    for name in magic_hour_async.__all__:
        obj = getattr(magic_hour_async, name)
        if isinstance(obj, type):
            assert obj.__module__ == "magic_hour_async", name
