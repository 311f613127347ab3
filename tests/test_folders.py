"""Searching a folder of videos says what it skipped: symlinked folders are followed (a loop searched once),
a folder or file that cannot be read is named as such (permission), not blamed on its contents.

Root reads anything: a permission failure is simulated where the code asks (``os.access``, ``os.scandir``),
and real permissions are tried as well, in a child process that under root drops the capabilities that
override file permissions."""
from __future__ import annotations

import os
import shutil

import pytest

from vaelib.paths import PROJECT_ROOT
from vaelib.preprocess import find_videos, list_videos, preprocess
from vaelib.video_io import VideoError, VideoWarning, probe


@pytest.fixture
def tree(small_dataset, tmp_path):
    """videos/a/synth01.mp4, and videos/linked -> elsewhere/ holding synth02.mp4."""
    root = tmp_path / "videos"
    (root / "a").mkdir(parents=True)
    shutil.copyfile(small_dataset.videos[0], root / "a" / "synth01.mp4")
    (tmp_path / "elsewhere").mkdir()
    shutil.copyfile(small_dataset.videos[1], tmp_path / "elsewhere" / "synth02.mp4")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    return root


def _deny(monkeypatch, denied):
    """Make ``os.access`` say no for the paths in ``denied`` (what it says for a user without permission)."""
    real = os.access

    def access(path, mode, *a, **k):
        return False if os.fspath(path) in {os.fspath(p) for p in denied} else real(path, mode, *a, **k)

    monkeypatch.setattr(os, "access", access)


def test_a_symlinked_folder_is_followed(tree):
    videos, skipped = find_videos(tree)
    assert [p.relative_to(tree).as_posix() for p in videos] == ["a/synth01.mp4", "linked/synth02.mp4"]
    assert skipped == []
    fs = preprocess(tree, tree.parent / "frames", size=8, progress=False)
    assert fs.movies == ["a/synth01", "linked/synth02"]


def test_a_loop_of_links_is_searched_once_and_said(tree):
    (tree / "a" / "up").symlink_to(tree, target_is_directory=True)
    videos, skipped = find_videos(tree)
    assert len(videos) == 2
    assert skipped == [(tree / "a" / "up", "folder already searched (a symbolic link leads back to it): "
                                           "searched once")]


def test_an_unreadable_folder_is_named_and_listed(tree, monkeypatch):
    _deny(monkeypatch, [tree / "linked"])
    videos, skipped = find_videos(tree)
    assert videos == [tree / "a" / "synth01.mp4"]
    assert skipped == [(tree / "linked", "folder could not be read (permission denied): its videos are left out")]
    with pytest.warns(VideoWarning, match=rf"1 path\(s\) skipped.*{tree / 'linked'}: folder could not be read "
                                          r"\(permission denied\)"):
        assert list_videos(tree, recursive=True) == [tree / "a" / "synth01.mp4"]
    with pytest.raises(VideoError, match=rf"{tree / 'linked'}: folder could not be read \(permission denied\).*"
                                         r"on_error='skip'"):
        preprocess(tree, tree.parent / "frames", size=8, progress=False)
    with pytest.warns(VideoWarning, match="skipped"):
        fs = preprocess(tree, tree.parent / "frames", size=8, progress=False, on_error="skip")
    report = fs.report()
    assert fs.movies == ["a/synth01"]
    row = report[report.status == "skipped"].iloc[0]
    assert row.movie == "linked" and "permission denied" in row.error


def test_a_folder_the_system_refuses_to_list_is_named(tree, monkeypatch):
    """The same when listing fails for real (os.scandir raising PermissionError, as for another user)."""
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(tree / "a"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    videos, skipped = find_videos(tree)
    assert videos == [tree / "linked" / "synth02.mp4"]
    assert skipped == [(tree / "a", "folder could not be read (permission denied): its videos are left out")]


def test_an_unreadable_video_is_named_as_unreadable(tree, monkeypatch):
    video = tree / "a" / "synth01.mp4"
    _deny(monkeypatch, [video])
    with pytest.raises(VideoError, match=rf"{video} cannot be read \(permission denied\)") as e:
        probe(video)
    assert "not a video" not in str(e.value)
    with pytest.warns(VideoWarning, match="skipped"):
        fs = preprocess(tree, tree.parent / "frames", size=8, progress=False, on_error="skip")
    report = fs.report().set_index("movie")
    assert report.loc["a/synth01", "status"] == "failed" and "permission denied" in report.loc["a/synth01", "error"]


_REAL_PERMISSIONS = """
import sys
from pathlib import Path
from vaelib.preprocess import find_videos
from vaelib.video_io import VideoError, probe
tree = Path(sys.argv[1])
videos, skipped = find_videos(tree)
assert videos == [tree / "a" / "synth01.mp4"] and "permission denied" in skipped[0][1], (videos, skipped)
try:
    probe(tree / "a" / "synth01.mp4")
except VideoError as e:
    assert "cannot be read (permission denied)" in str(e), e
else:
    raise AssertionError("an unreadable video was probed")
"""


def test_real_permissions(tree):
    """The same checks with the file system's own refusals, in a child process: as this user, or under root
    (which reads any file) as root without the capabilities that override file permissions (``setpriv``)."""
    import subprocess
    import sys

    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    (tree / "a" / "synth01.mp4").chmod(0)
    (tree.parent / "elsewhere").chmod(0)
    try:
        run = subprocess.run([*drop, sys.executable, "-c", _REAL_PERMISSIONS, str(tree)], capture_output=True,
                             text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
        assert run.returncode == 0, run.stderr[-2000:]
    finally:
        (tree / "a" / "synth01.mp4").chmod(0o644)
        (tree.parent / "elsewhere").chmod(0o755)
