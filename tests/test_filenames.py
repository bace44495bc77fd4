"""Output file names: unique per project and output, and never outside the target directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from magic_hour_async import DownloadError
from magic_hour_async._transfers._filenames import clean_component, confine, output_filename, url_basename

CDN = "https://videos.magichour.ai"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"{CDN}/id/output.mp4", "output.mp4"),
        (f"{CDN}/id/output.mp4?X-Amz-Signature=abc&X-Amz-Expires=86400", "output.mp4"),
        (f"{CDN}/id/output.mp4#frag", "output.mp4"),
        (f"{CDN}/id/..%2F..%2Fetc%2Fpasswd", "passwd"),
        (f"{CDN}/id/..%5C..%5Cwindows%5Cwin.ini", "win.ini"),
        (f"{CDN}/id/a%20b.png", "a b.png"),
        (f"{CDN}/id/", ""),
        (f"{CDN}", ""),
        ("/etc/passwd", "passwd"),
        ("C:\\Users\\x\\render.mp4", "render.mp4"),
        ("file:///etc/shadow", "shadow"),
    ],
)
def test_url_basename_keeps_only_the_last_decoded_segment(url: str, expected: str) -> None:
    assert url_basename(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("output.mp4", "output.mp4"),
        ("..", "output"),
        ("...", "output"),
        (".bashrc", "bashrc"),
        ("..passwd", "passwd"),
        ("", "output"),
        ("evil\x00.mp4", "evil.mp4"),
        ("a\nb\r\tc.png", "abc.png"),
        ("a b/c\\d:e*f?.wav", "a_b_c_d_e_f_.wav"),
        ("con.", "con"),
        ("ünïcode.png", "_n_code.png"),
        ("/", "_"),
    ],
)
def test_clean_component(text: str, expected: str) -> None:
    assert clean_component(text, limit=120) == expected


def test_long_names_are_cut_keeping_the_extension() -> None:
    cleaned = clean_component("x" * 500 + ".mp4", limit=120)
    assert len(cleaned) == 120
    assert cleaned.endswith("xxx.mp4")
    assert clean_component("y" * 500, limit=120) == "y" * 120


@pytest.mark.parametrize(
    ("project_id", "url", "index", "count", "expected"),
    [
        ("cm1abc", f"{CDN}/id/output.mp4?sig=1", 0, 1, "cm1abc-output.mp4"),
        ("cm1abc", f"{CDN}/id/image.png", 0, 3, "cm1abc-0-image.png"),
        ("cm1abc", f"{CDN}/id/image.png", 2, 3, "cm1abc-2-image.png"),
        ("cm1abc", f"{CDN}/id/..%2F..%2Fetc%2Fpasswd", 0, 1, "cm1abc-passwd"),
        ("cm1abc", f"{CDN}/id/%00", 0, 1, "cm1abc-output"),
        ("cm1abc", f"{CDN}/", 0, 1, "cm1abc-output"),
        ("cm1abc", "https://evil.example/..", 0, 1, "cm1abc-output"),
    ],
)
def test_output_filename(project_id: str, url: str, index: int, count: int, expected: str) -> None:
    assert output_filename(project_id, url, index=index, count=count) == expected


def test_two_projects_with_the_same_url_basename_get_different_names() -> None:
    first = output_filename("p1", f"{CDN}/a/output.mp4", index=0, count=1)
    second = output_filename("p2", f"{CDN}/b/output.mp4", index=0, count=1)
    assert first != second


def test_outputs_of_one_project_with_the_same_basename_get_different_names() -> None:
    names = {output_filename("p1", f"{CDN}/{i}/image.png", index=i, count=4) for i in range(4)}
    assert len(names) == 4


@pytest.mark.parametrize("project_id", ["../../x", "a/b", "a\\b", ".hidden", "", "\x00", "x" * 300])
def test_hostile_project_ids_are_cleaned_and_stay_distinct(project_id: str) -> None:
    name = output_filename(project_id, f"{CDN}/output.mp4", index=0, count=1)
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    assert len(name) < 200
    # A hash of the original id keeps ids that clean to the same text apart.
    assert name != output_filename(project_id + "/", f"{CDN}/output.mp4", index=0, count=1)


def test_every_generated_name_is_confined(tmp_path: Path) -> None:
    hostile = [
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fboot.ini",
        "..%5C..%5Cx.mp4",
        "%00",
        "%2F",
        "..",
        "x" * 1000 + ".mp4",
    ]
    for segment in hostile:
        name = output_filename("../../p", f"{CDN}/id/{segment}?q=../../x", index=0, count=1)
        path = confine(tmp_path, name)
        assert path.parent == tmp_path.resolve()
        assert len(name.encode()) <= 200


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "..", ".", ""])
def test_confine_rejects_names_that_escape(tmp_path: Path, name: str) -> None:
    with pytest.raises(DownloadError, match="refusing to write"):
        confine(tmp_path, name)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_confine_rejects_a_symlink_planted_under_the_name(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "p-output.mp4").symlink_to(outside / "target.mp4")
    with pytest.raises(DownloadError):
        confine(inside, "p-output.mp4")
