"""Real-world video files, made with the bundled ffmpeg: every stored frame time within 1 ms of ffmpeg's own.

Each case is a kind of file a user brings: a container whose header disagrees with its stream (h264 with
B-frames in an AVI, whose empty chunks double the header's count and rate), variable frame rate, rotation
metadata, an odd picture size, a stream cut mid-frame, audio only, zero bytes, text named .mp4.
"""
from __future__ import annotations

import re
import subprocess
import warnings

import numpy as np
import pytest

from vaelib.framestore import load_frames
from vaelib.preprocess import preprocess
from vaelib.video_io import VideoError, VideoReader, VideoWarning, ffmpeg_exe, probe, read_frame_at, read_video


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _source(w: int, h: int, rate: int, seconds: float) -> list[str]:
    """A lavfi test picture with noise (so frames differ and compress like footage), 4:4:4 so odd sizes stay."""
    return ["-f", "lavfi", "-i",
            f"testsrc2=size={w}x{h}:rate={rate}:duration={seconds},format=yuv444p,noise=alls=30:allf=t"]


def ffmpeg_frame_times(path) -> np.ndarray:
    """Every decoded frame's time as ffmpeg's framemd5 muxer writes it (an independent path through ffmpeg)."""
    out = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
                          "-map", "0:v:0", "-fps_mode", "passthrough", "-enc_time_base", "1/90000",
                          "-f", "framemd5", "-"], capture_output=True, text=True).stdout
    num, den = map(int, re.search(r"#tb 0: (\d+)/(\d+)", out).groups())
    pts = [int(line.split(",")[2]) for line in out.splitlines() if line and not line.startswith("#")]
    return np.asarray(pts, float) * num / den


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("made")
    f = {}
    # h264 with B-frames in an AVI on a 1/50 s clock: AVI has no timestamps, so the muxer fills every other
    # tick with an empty chunk; the header then says 200 frames at 50 fps for 100 frames at 25 fps.
    f["header"] = d / "bframes.avi"
    _ffmpeg(*_source(64, 48, 25, 4), "-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p",
            "-enc_time_base", "1/50", "-fps_mode", "passthrough", str(f["header"]))
    # 30 frames at 10 fps, then 30 at 30 fps
    f["vfr"] = d / "vfr.mp4"
    _ffmpeg(*_source(64, 48, 30, 2), "-vf", "setpts='if(lt(N,30),N/10,3+(N-30)/30)/TB'", "-fps_mode", "passthrough",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", str(f["vfr"]))
    # a 64x48 picture whose left half is bright, stored with a display rotation of 90 degrees
    upright, f["rotated"] = d / "upright.mp4", d / "rotated.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=black:size=64x48:rate=10:duration=1", "-vf",
            "drawbox=x=0:y=0:w=32:h=48:color=white:t=fill", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(upright))
    _ffmpeg("-display_rotation", "90", "-i", str(upright), "-c", "copy", str(f["rotated"]))
    # h264 with B-frames and 2-s key-frame intervals, starting 1.5 s into the container's clock
    f["offset"] = d / "offset.mp4"
    _ffmpeg(*_source(64, 48, 25, 8), "-c:v", "libx264", "-bf", "2", "-g", "50", "-pix_fmt", "yuv420p",
            "-output_ts_offset", "1.5", str(f["offset"]))
    f["odd"] = d / "odd.mkv"
    _ffmpeg(*_source(65, 37, 25, 1), "-c:v", "ffv1", str(f["odd"]))
    full = d / "full.mp4"
    _ffmpeg(*_source(96, 64, 25, 4), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(full))
    data = full.read_bytes()
    f["cut"] = d / "cut.mp4"
    f["cut"].write_bytes(data[: len(data) // 2])
    f["audio"] = d / "audio.mp4"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(f["audio"]))
    f["empty"] = d / "empty.mp4"
    f["empty"].write_bytes(b"")
    f["text"] = d / "text.mp4"
    f["text"].write_text("not a video\n" * 50)
    return f


def _decode(path, strict=True):
    reader = VideoReader(path, strict=strict)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = [frame for _, frame in reader]
    return reader, frames, [str(w.message) for w in caught if issubclass(w.category, VideoWarning)]


def test_header_that_disagrees_is_a_warning_and_the_times_are_the_decoders(made, tmp_path):
    path = made["header"]
    info = probe(path)
    assert (info.n_frames, info.fps) == (200, 50.0)               # what the header claims
    reader, frames, said = _decode(path)
    assert len(frames) == 100
    assert len(said) == 1 and "200 frames at 50.000 fps" in said[0] and "100 frames" in said[0]
    assert "bframes.avi" in said[0]
    np.testing.assert_allclose(reader.times, ffmpeg_frame_times(path), atol=1e-3)
    with pytest.warns(VideoWarning, match="bframes.avi"):
        fs = preprocess([path], tmp_path / "frames", size=16, progress=False)
    np.testing.assert_allclose(fs.index.time_s, ffmpeg_frame_times(path), atol=1e-3)
    assert fs.durations()["bframes"] == pytest.approx(fs.index.time_s.iloc[-1] + 0.02, abs=1e-3)
    assert fs.fps("bframes") == pytest.approx(25.0, rel=0.03)


def test_variable_frame_rate_is_timed_frame_by_frame(made, tmp_path):
    path = made["vfr"]
    truth = np.r_[np.arange(30) / 10, 3 + np.arange(30) / 30]
    reader, frames, _ = _decode(path)
    np.testing.assert_allclose(reader.times, truth, atol=1e-3)
    np.testing.assert_allclose(reader.times, ffmpeg_frame_times(path), atol=1e-3)
    assert reader.timing.variable and reader.timing.min_fps == pytest.approx(10, rel=0.01)
    assert reader.timing.max_fps == pytest.approx(30, rel=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoWarning)
        fs = preprocess([path], tmp_path / "frames", size=16, stride=2, progress=False)
    np.testing.assert_allclose(fs.index.time_s, truth[::2], atol=1e-3)
    assert fs.index.frame.tolist() == list(range(0, 60, 2))
    assert fs.durations()["vfr"] == pytest.approx(4.0, abs=1e-3)
    assert load_frames(tmp_path / "frames").manifest["videos"][0]["variable_rate"] is True


def test_full_resolution_frame_is_found_by_time(made):
    """Decoded from the start (AVI) or after a seek (mp4): the very frame of the index, at any rate or offset."""
    offset = VideoReader(made["offset"])
    assert [t for t, _ in offset][:2] == pytest.approx([0, 0.04], abs=1e-3)   # times from the file's start
    for name in ("vfr", "header", "offset"):
        reader = VideoReader(made[name], accurate=True)             # read_frame_at's colours
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VideoWarning)
            decoded = list(reader)
        for k in (0, 1, 29, 30, 31, 49, 50, 51, 99, 149, len(decoded) - 1):
            if k >= len(decoded):
                continue
            t, frame = decoded[k]
            np.testing.assert_array_equal(read_frame_at(made[name], t), frame, err_msg=f"{name} frame {k} at {t} s")


def test_rotation_metadata_is_applied(made):
    reader, frames, _ = _decode(made["rotated"])
    assert frames[0].shape == (64, 48, 3)                         # 64x48 turned a quarter: 48 wide, 64 tall
    assert len(frames) == 10
    np.testing.assert_allclose(reader.times, ffmpeg_frame_times(made["rotated"]), atol=1e-3)
    bright = frames[0].mean(axis=(1, 2))
    assert abs(bright[:32].mean() - bright[32:].mean()) > 100     # the bright half is now the top or bottom one


def test_odd_picture_size(made, tmp_path):
    reader, frames, said = _decode(made["odd"])
    assert frames[0].shape == (37, 65, 3) and len(frames) == 25 and not said
    np.testing.assert_allclose(reader.times, ffmpeg_frame_times(made["odd"]), atol=1e-3)
    fs = preprocess([made["odd"]], tmp_path / "frames", size=8, progress=False)
    assert fs.frames.shape == (25, 8, 8, 3)


def test_stream_cut_mid_frame(made, tmp_path):
    with pytest.raises(VideoError, match=r"cut.mp4: decoding stopped after \d+ of the 100 frames.*strict=False"):
        list(read_video(made["cut"]))
    reader, frames, said = _decode(made["cut"], strict=False)
    assert 10 < len(frames) < 100 and len(said) == 1 and "cut.mp4" in said[0]
    np.testing.assert_allclose(reader.times, ffmpeg_frame_times(made["cut"]), atol=1e-3)
    np.testing.assert_allclose(np.asarray(reader.times) * 25, np.round(np.asarray(reader.times) * 25), atol=0.025)
    with pytest.raises(VideoError, match="cut.mp4"):
        preprocess([made["cut"]], tmp_path / "frames", size=8, progress=False)
    assert not (tmp_path / "frames").exists()


@pytest.mark.parametrize("case, message", [("audio", "audio.mp4"), ("empty", "empty.mp4.*0 bytes"),
                                           ("text", "text.mp4")])
def test_files_without_video_are_named(made, case, message):
    with pytest.raises(VideoError, match=message):
        list(read_video(made[case]))


def test_scrubber_shows_the_rows_own_full_resolution_frame(made, tmp_path):
    import cv2

    from vaelib.widgets import frame_scrubber

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoWarning)
        fs = preprocess([made["vfr"]], tmp_path / "frames", size=16, stride=3, progress=False)
        decoded = list(VideoReader(made["vfr"], accurate=True))     # read_frame_at's colours
    w = frame_scrubber(fs)
    slider, full = w.children[0].children[2], w.children[2].children[1].children[1]
    for row in (5, 11, 12):                                  # rows 10 and up are the 30-fps part
        slider.value = row
        shown = cv2.cvtColor(cv2.imdecode(np.frombuffer(full.value, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        t, frame = decoded[int(fs.index.frame.iloc[row])]
        assert t == pytest.approx(fs.index.time_s.iloc[row], abs=1e-6)
        np.testing.assert_array_equal(shown, frame)


def test_short_clips_decoded_together_give_what_each_gives_alone(made, tmp_path, monkeypatch):
    """Short AVI clips go to ffmpeg several at a time (one start-up for all): the store is bitwise the one that
    one ffmpeg run per clip makes. A clip that does not decode plainly (the AVI whose header disagrees, a cut
    AVI) is decoded again alone and keeps its own warnings."""
    import pandas as pd

    from vaelib import preprocess as pipeline
    from vaelib import preprocess_worker

    clips = [tmp_path / "v" / f"c{k}.avi" for k in range(6)]
    clips[0].parent.mkdir()
    for k, clip in enumerate(clips):
        _ffmpeg(*_source(64, 48, 25, 1 + k % 2), "-c:v", "mpeg4", "-pix_fmt", "yuv420p", str(clip))
    whole = tmp_path / "whole.avi"
    _ffmpeg(*_source(64, 48, 25, 2), "-c:v", "mpeg4", "-pix_fmt", "yuv420p", str(whole))
    cut = tmp_path / "v" / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    videos = [*clips[:3], made["header"], *clips[3:], cut]        # 8 videos: runs of 2 with one worker
    runs = []
    batch = preprocess_worker.decode_batch
    monkeypatch.setattr(preprocess_worker, "decode_batch", lambda *a: runs.append(batch(*a)) or runs[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        together = preprocess(videos, tmp_path / "together", size=16, stride=2, strict=False, progress=False)
        monkeypatch.setattr(pipeline, "BATCH_CLIPS", 1)
        alone = preprocess(videos, tmp_path / "alone", size=16, stride=2, strict=False, progress=False)
    counts = [n for run in runs for n in run]
    assert len(runs) == 4 and sum(n is not None for n in counts) >= 4 and counts.count(None) >= 2
    np.testing.assert_array_equal(together.frames, alone.frames)
    pd.testing.assert_frame_equal(together.index, alone.index)
    assert together.manifest["videos"] == alone.manifest["videos"]
    same = ["movie", "status", "frames_decoded", "frames_stored", "duration_s", "fps", "warnings", "error"]
    # why a cut file stopped varies from one ffmpeg run to the next (a decoder error, or none before the end)
    pd.testing.assert_frame_equal(*(fs.report()[same].replace(r"(, at [\d.]+ s): .*", r"\1: ...", regex=True)
                                    for fs in (together, alone)))
    assert "header says 200 frames" in together.report().warnings[3]
    assert "truncated" in together.report().warnings[7]


def test_a_short_last_interval_alone_is_not_a_variable_rate(tmp_path):
    """An AVI whose header claims 682 frames at 50 fps decodes as 341 at 25, its last frame 20 ms after the one
    before: the warning called the stream "variable: 25.00 to 50.00 fps" for that one interval."""
    from pathlib import Path

    from vaelib.video_io import VideoInfo, _Log

    def judged(times):
        reader = VideoReader(Path("cut.avi"), info=VideoInfo(Path("cut.avi"), 682, 50.0, 240, 320))
        reader.times = list(times)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", VideoWarning)
            timing = reader._judge([0.04] * len(times), _Log(None, stream=False), 0)
        return timing, [str(w.message) for w in said]

    timing, said = judged([k * 0.04 for k in range(340)] + [339 * 0.04 + 0.02])
    assert not timing.variable and timing.min_fps == pytest.approx(25) == timing.max_fps
    assert len(said) == 1 and "682 frames at 50.000 fps" in said[0] and "variable" not in said[0]
    timing, said = judged([k * 0.04 for k in range(170)] + [169 * 0.04 + k * 0.02 for k in range(1, 343)])
    assert timing.variable and "variable: 25.00 to 50.00 fps" in said[0]        # a real change of rate still is


def test_a_video_of_1x1_pixels_is_refused_with_the_real_minimum(tmp_path):
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:size=2x2:rate=10:duration=1", "-vf", "scale=1:1", "-c:v", "ffv1",
            str(tmp_path / "dot.avi"))
    assert (probe(tmp_path / "dot.avi").width, probe(tmp_path / "dot.avi").height) == (1, 1)
    with pytest.raises(VideoError, match=r"dot.avi is 1x1 pixels: too small for a frame store, whose frames are at "
                                         r"least 4x4 \(size must be at least 4\)"):
        preprocess([tmp_path / "dot.avi"], tmp_path / "frames", size=4, progress=False)
