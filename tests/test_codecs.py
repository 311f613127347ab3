"""Classic codecs through ffmpeg, rate-distortion records, rates and BD-rate."""
import dataclasses

import bjontegaard
import numpy as np
import pytest

from vaelib import classic, rd
from vaelib.metrics import ms_ssim, psnr
from vaelib.paths import PROJECT_ROOT


def test_bits_per_pixel_from_bytes():
    assert rd.bits_per_pixel(1000, 10, 20, 25) == pytest.approx(8000 / 5000)
    with pytest.raises(ValueError):
        rd.bits_per_pixel(10, 0, 64, 64)


def test_bd_rate_known_answers():
    psnr_a = np.array([28.0, 31.0, 34.0, 37.0])
    rate_a = np.exp(0.02 * (psnr_a - 20) ** 2 - 3.0)        # any smooth curve, log-rate cubic in PSNR
    # the test codec needs 20% fewer bits at every quality, sampled at other PSNRs
    psnr_t = np.array([27.0, 30.5, 33.0, 36.0, 38.0])
    rate_t = 0.8 * np.exp(0.02 * (psnr_t - 20) ** 2 - 3.0)
    assert rd.bd_rate(rate_a, psnr_a, rate_t, psnr_t) == pytest.approx(-20.0, abs=1e-6)
    assert rd.bd_rate(rate_t, psnr_t, rate_a, psnr_a) == pytest.approx(25.0, abs=1e-6)
    assert rd.bd_rate(rate_a, psnr_a, rate_a, psnr_a) == pytest.approx(0.0, abs=1e-9)
    # no overlap in quality: undefined
    assert np.isnan(rd.bd_rate(rate_a, psnr_a, rate_a, psnr_a + 20))


def test_bd_rate_on_crossing_curves_known_answers():
    """The test codec is 10% cheaper on average but cheaper at low and dearer at high quality: the curves
    cross at 33.25 dB, the middle of the shared range 29.5-37 dB. Only the right fit over the shared range
    gives exactly -10%: a lower degree, or integrating over either curve's own range, moves it."""
    psnr_a = np.array([28.0, 31.0, 34.0, 37.0])
    log_rate = lambda d: 0.001 * (d - 20) ** 3 - 0.01 * (d - 20) ** 2 + 0.1 * d - 4.0  # cubic in PSNR
    psnr_t = np.array([29.5, 31.0, 33.0, 36.0, 38.0])
    tilt = lambda d: np.log(0.9) + 0.08 * (d - 33.25)  # crossing: log-rate difference linear in PSNR
    rate_a, rate_t = np.exp(log_rate(psnr_a)), np.exp(log_rate(psnr_t) + tilt(psnr_t))
    assert rate_t[0] < np.exp(log_rate(29.5)) and rate_t[-1] > np.exp(log_rate(38.0))  # they do cross
    assert rd.bd_rate(rate_a, psnr_a, rate_t, psnr_t) == pytest.approx(-10.0, abs=1e-6)
    assert rd.bd_rate(rate_t, psnr_t, rate_a, psnr_a) == pytest.approx(100 / 0.9 - 100, abs=1e-6)


def crossing_pairs():
    """Random crossing pairs of RD curves (4-6 points each) and the committed benchmark's codec curves."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        curves = []
        for n in rng.integers(4, 7, 2):
            d = np.sort(rng.uniform(22, 40, n))
            slope = rng.uniform(0.15, 0.35)
            curves.append((np.exp(slope * (d - 30) + rng.normal(0, 0.05, n)), d))
        (ra, da), (rt, dt) = curves
        if rd.pareto_front(ra, da)[0].size == n and min(da.max(), dt.max()) - max(da.min(), dt.min()) > 4:
            yield "random", ra, da, rt, dt
    points = rd.load_rd(PROJECT_ROOT / "benchmarks" / "results" / "voxen_rd.json")
    for dataset in sorted({p.dataset for p in points}):
        by_codec = {}
        for p in points:
            if p.dataset == dataset and (p.codec != "voxen" or p.seed == 0):
                by_codec.setdefault(p.codec, []).append(p)
        for anchor in ("x264", "x265"):
            for test, pts in by_codec.items():
                if test != anchor:
                    curves = [np.array([getattr(p, f) for p in c])
                              for c in (by_codec[anchor], pts) for f in ("bpp", "psnr")]
                    yield (f"{dataset} {test} vs {anchor}", *curves)


def test_bd_rate_matches_the_bjontegaard_package():
    """Against the reference implementation (``bjontegaard``, its cubic-polynomial method, which is
    Bjontegaard's original), on crossing random curves and on every codec pair of the RD benchmark."""
    checked = crossed = real = 0
    for name, ra, da, rt, dt in crossing_pairs():
        if any(rd.pareto_front(r, d)[0].size < r.size for r, d in ((ra, da), (rt, dt))):
            continue  # the package keeps dominated points, which bd_rate drops on purpose
        if not min(da.max(), dt.max()) > max(da.min(), dt.min()):
            continue
        expected = bjontegaard.bd_rate(ra, da, rt, dt, method="cubic", require_matching_points=False,
                                       min_overlap=0)
        assert rd.bd_rate(ra, da, rt, dt) == pytest.approx(expected, rel=1e-6, abs=1e-9), name
        lo, hi = max(da.min(), dt.min()), min(da.max(), dt.max())
        grid = np.linspace(lo, hi, 50)
        gap = np.interp(grid, dt, np.log(rt)) - np.interp(grid, da, np.log(ra))
        crossed += bool(gap.min() < 0 < gap.max())
        checked += 1
        real += name != "random"
    assert checked >= 20 and crossed >= 5 and real >= 6, (checked, crossed, real)


def smooth_clip(t=8, s=32, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:s, 0:s] / s
    ph = rng.uniform(0, 6, 3)
    frames = [np.stack([np.sin(5 * x + 0.2 * i + ph[0]), np.cos(4 * y - 0.15 * i + ph[1]),
                        np.sin(3 * (x + y) + ph[2])], -1) for i in range(t)]
    return ((np.stack(frames) * 0.45 + 0.5) * 255).astype(np.uint8)


@pytest.mark.parametrize("codec", classic.CLASSIC_CODECS)
def test_classic_codec_round_trip(codec):
    clip = smooth_clip()
    best, worst = (18, 45) if codec != "mjpeg" else (2, 31)
    hi = classic.run_codec(clip, codec, best)
    lo = classic.run_codec(clip, codec, worst)
    assert hi.decoded.shape == clip.shape and hi.decoded.dtype == np.uint8
    headers = 32 + 12 * len(clip) if codec in ("vp9", "av1") else 0       # IVF file and frame headers
    assert hi.n_bytes == len(hi.stream) - headers > 0
    assert lo.n_bytes < hi.n_bytes                              # lower quality, fewer bytes
    assert psnr(clip, hi.decoded) > 33 and psnr(clip, hi.decoded) > psnr(clip, lo.decoded)
    assert b"x264 - core" not in hi.stream and b"x265 (build" not in hi.stream   # settings SEI stripped


def test_classic_rd_records():
    clips = [smooth_clip(s=64, seed=0), smooth_clip(s=64, seed=1)]
    pts = classic.classic_rd(clips, codecs=["x264"], settings={"x264": [22, 40]}, dataset="tiny", progress=False,
                            fps=29.97)
    assert [p.setting for p in pts] == [22, 40]
    assert pts[0].fps == 29.97 and pts[0].clip_len == 8 and pts[0].image_size == 64
    assert pts[0].encode_fps == pytest.approx(8 / pts[0].encode_s) and pts[0].decode_fps > 0
    assert pts[0].psnr_yuv > pts[1].psnr_yuv > 20
    assert pts[0].bpp > pts[1].bpp and pts[0].psnr > pts[1].psnr
    assert 0 < pts[1].ms_ssim < pts[0].ms_ssim <= 1
    assert pts[0].n_clips == 2 and "ffmpeg version" in pts[0].settings and "-crf 22" in pts[0].settings
    assert len(pts[0].clip_bpp) == 2 and np.mean(pts[0].clip_bpp) == pytest.approx(pts[0].bpp)
    assert np.mean(pts[0].clip_psnr) == pytest.approx(pts[0].psnr) and pts[0].clip_psnr[0] != pts[0].clip_psnr[1]
    assert set(pts[0].to_dict()) >= {"codec", "setting", "bpp", "psnr", "ms_ssim", "encode_s", "decode_s"}


def test_psnr_yuv():
    from vaelib.metrics import psnr_yuv

    clip = smooth_clip(t=3, s=64)
    assert psnr_yuv(clip, clip) == pytest.approx(100.0)
    grey = clip.copy()
    grey[..., :] = 128
    noisy = np.clip(clip.astype(int) + 6, 0, 255).astype(np.uint8)     # a brightness shift: luma only
    assert psnr_yuv(clip, noisy) > psnr(clip, noisy)                    # chroma untouched: +100 dB on 2/8
    assert psnr_yuv(clip, grey) < 25
    with pytest.raises(ValueError, match="shapes differ"):
        psnr_yuv(clip, clip[:2])


def test_metrics():
    clip = smooth_clip(t=3, s=64)
    assert psnr(clip, clip) == float("inf") and ms_ssim(clip, clip) == pytest.approx(1.0)
    noisy = np.clip(clip + np.random.default_rng(0).normal(0, 8, clip.shape), 0, 255).astype(np.uint8)
    assert 25 < psnr(clip, noisy) < 35 and ms_ssim(clip, noisy) < 0.99
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(clip, clip[:2])
    with pytest.raises(ValueError, match="shapes differ"):
        ms_ssim(clip, clip[:2])


def test_rd_records_round_trip_and_bd_table(tmp_path):
    psnrs = [26.0, 30.0, 34.0, 38.0]
    pts = [rd.RDPoint("x264", s, float(np.exp(0.1 * p - 4)), p, 0.9, 0.01, 0.01, 1, 100)
           for s, p in zip([40, 34, 28, 22], psnrs)]
    pts += [rd.RDPoint("voxen", s, float(1.5 * np.exp(0.1 * p - 4)), p, 0.9, 0.01, 0.01, 1, 150)
            for s, p in zip([0.1, 0.2, 0.3, 0.4], psnrs)]
    path = rd.save_rd(pts, tmp_path / "rd.json")
    assert rd.load_rd(path) == pts
    table = rd.bd_table(pts)
    assert list(table.codec) == ["voxen"]
    assert table["bd_rate_psnr_%"].iloc[0] == pytest.approx(50.0, abs=1e-6)
    assert table[["psnr_ci95_lo_%", "psnr_ci95_hi_%"]].isna().all(axis=None)   # no per-clip values: no interval
    assert np.isnan(table["bd_rate_psnr_yuv_%"].iloc[0])                       # records without YUV PSNR: none
    yuv = [dataclasses.replace(p, psnr_yuv=p.psnr + (3.0 if p.codec == "x264" else 0.0)) for p in pts]
    assert rd.bd_table(yuv)["bd_rate_psnr_yuv_%"].iloc[0] > 50.0            # x264 better on YUV: VoxEn worse
    with pytest.raises(ValueError, match="anchor"):
        rd.bd_table(pts[4:])
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match="bad.json"):
        rd.load_rd(tmp_path / "bad.json")


def test_bd_rate_interval_over_clips(tmp_path):
    """The bootstrap resamples the clips (the same draw for every point): clips that agree give no spread at all;
    clips that disagree give an interval around the BD-rate of their means; no per-clip values, no interval."""
    psnrs = np.array([26.0, 30.0, 34.0, 38.0])

    def curve(codec, factors, shift=0.0):          # one factor per clip: that clip's rate against the anchor
        return [rd.RDPoint(codec, i, float(np.mean([f * np.exp(0.1 * q - 4) for f in factors])), q + shift,
                               0.9, 0.01, 0.01, len(factors), 100, clip_bpp=tuple(f * np.exp(0.1 * q - 4)
                                                                               for f in factors),
                               clip_psnr=(q + shift,) * len(factors)) for i, q in enumerate(psnrs)]
    x264 = curve("x264", [1.0] * 4)
    same = rd.bd_rate_interval(x264, curve("voxen", [1.5] * 4))
    assert same == pytest.approx((50.0, 50.0), abs=1e-6)
    mixed = curve("voxen", [0.5, 0.5, 2.0, 2.0])   # half the clips cheaper, half dearer
    lo, hi = rd.bd_rate_interval(x264, mixed)
    point = rd.bd_rate_points(x264, mixed)
    assert lo < 0 < point < hi and lo >= -50 and hi <= 100
    mid_lo, mid_hi = rd.bd_rate_interval(x264, mixed, level=0.5)          # a 50% interval lies inside
    assert lo < mid_lo <= point <= mid_hi < hi
    assert rd.load_rd(rd.save_rd(mixed, tmp_path / "rd.json")) == mixed  # per-clip values round-trip
    row = rd.bd_table(x264 + mixed).iloc[0]                               # the table gives it too
    assert (row["psnr_ci95_lo_%"], row["psnr_ci95_hi_%"]) == pytest.approx((lo, hi))
    bare = [rd.RDPoint("voxen", p.setting, p.bpp, p.psnr, 0.9, 0.01, 0.01, 4, 100) for p in mixed]
    assert np.isnan(rd.bd_rate_interval(x264, bare)).all()               # records from before: no interval
    assert np.isnan(rd.bd_rate_interval(x264, curve("voxen", [1.5] * 3))).all()   # other clips: none
    assert np.isnan(rd.bd_rate_interval(x264, curve("voxen", [1.5] * 4, shift=30))).all()  # no overlap


def test_bd_rate_ignores_dominated_points():
    psnr_a = np.array([26.0, 29.0, 32.0, 35.0])
    rate_a = np.exp(0.12 * psnr_a - 4)
    psnr_t = np.array([27.0, 30.0, 33.0])
    rate_t = 0.5 * np.exp(0.12 * psnr_t - 4)
    clean = rd.bd_rate(rate_a, psnr_a, rate_t, psnr_t)
    assert clean == pytest.approx(-50.0, abs=1e-6)
    # a worse extra point (more bits for less quality) must not bend the test curve
    noisy = rd.bd_rate(rate_a, psnr_a, np.append(rate_t, rate_t[2] * 1.1), np.append(psnr_t, 28.0))
    assert noisy == pytest.approx(clean, abs=1e-9)
    r, q = rd.pareto_front([1.0, 2.0, 3.0, 4.0], [10.0, 12.0, 11.0, 13.0])
    assert r.tolist() == [1.0, 2.0, 4.0] and q.tolist() == [10.0, 12.0, 13.0]
    assert np.isnan(rd.bd_rate(rate_a, psnr_a, [1.0, 2.0], [30.0, 29.0]))   # one efficient point left


def test_rate_at_quality():
    pts = [rd.RDPoint("x264", s, b, p, 0.9, 0, 0, 1, 1) for s, b, p in [(1, 0.1, 30.0), (2, 0.4, 34.0)]]
    assert rd.rate_at_quality(pts, 32.0) == pytest.approx(0.2)      # geometric midpoint
    assert rd.rate_at_quality(pts, 30.0) == pytest.approx(0.1)
    assert np.isnan(rd.rate_at_quality(pts, 29.0)) and np.isnan(rd.rate_at_quality(pts, 35.0))


def test_one_rd_schema_for_chapter_and_benchmark(tmp_path):
    from vaelib.paths import PROJECT_ROOT

    bench = rd.load_rd(PROJECT_ROOT / "benchmarks" / "results" / "voxen_rd.json")
    assert bench and all(p.clip_len > 0 for p in bench)
    vox = [p for p in bench if p.codec == "voxen"]
    assert vox and all(p.train_steps > 0 for p in vox)
    assert all(np.isfinite(p.encode_fps) and p.encode_fps > 0 for p in bench)
    (tmp_path / "extra.json").write_text('[{"codec": "x264", "bogus": 1}]')
    with pytest.raises(ValueError, match=r"extra.json.*bogus"):
        rd.load_rd(tmp_path / "extra.json")


def test_ms_ssim_of_a_large_clip_is_measured_on_frames_spread_over_it(monkeypatch):
    """MS-SSIM, the costliest metric at 1280 x 720, takes at most ``MS_SSIM_PIXELS`` pixels of a clip: every frame of
    a small clip, evenly spread frames of a large one; PSNR always takes every frame."""
    rng = np.random.default_rng(5)
    clip = rng.integers(0, 256, (9, 40, 40, 3), dtype=np.uint8)
    noisy = np.clip(clip + rng.normal(0, 20, clip.shape) * np.arange(1, 10)[:, None, None, None], 0, 255
                    ).astype(np.uint8)                        # later frames noisier: which frames are kept matters
    assert rd.spread_frames(clip, noisy)[0] is clip            # 9 x 40 x 40 is far below the budget
    a, b = rd.spread_frames(clip, noisy, pixels=3 * 40 * 40)
    assert np.array_equal(a, clip[[0, 4, 8]]) and np.array_equal(b, noisy[[0, 4, 8]])
    point = rd.rd_point("x", 1, [clip], [noisy], [100], [1.0], [1.0])
    assert point.ms_ssim == pytest.approx(ms_ssim(clip, noisy)) and point.psnr == pytest.approx(psnr(clip, noisy))
    monkeypatch.setattr(rd, "MS_SSIM_PIXELS", 3 * 40 * 40)
    small = rd.rd_point("x", 1, [clip], [noisy], [100], [1.0], [1.0])
    assert small.ms_ssim == pytest.approx(ms_ssim(clip[[0, 4, 8]], noisy[[0, 4, 8]]))
    assert small.ms_ssim != pytest.approx(point.ms_ssim) and small.psnr == point.psnr
