"""Boundary signals and the comparison statistics: they must reward alignment and nothing else."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vaelib import boundaries as bd
from vaelib import boundary_data, boundary_report, comparison
from vaelib import signals as sg
from vaelib import stats as st

FPS = 10.0


def _targets(duration=120.0, n_obs=12, seed=0):
    """Two movies with true boundaries every ~15 s and observers who press near them."""
    rng = np.random.default_rng(seed)
    truth, rows, durations = {}, [], {}
    for movie in ("m1", "m2"):
        t = np.cumsum(rng.uniform(10, 20, 20))
        t = t[t < duration - 5]
        truth[movie], durations[movie] = t, duration
        for o in range(n_obs):
            for b in t:
                if rng.random() < 0.8:
                    rows.append((f"s{o}", "c", movie, float(np.clip(b + rng.normal(0.5, 0.3), 0, duration))))
            for f in rng.uniform(0, duration, 2):
                rows.append((f"s{o}", "c", movie, float(f)))
    presses = pd.DataFrame(rows, columns=["subject", "condition", "movie", "time_s"])
    return bd.Targets(durations, presses, truth)


def _signals(targets, shift_s=0.0, noise=0.2, seed=1):
    """A per-frame signal with a bump at each true boundary (+ shift_s), plus noise."""
    rng = np.random.default_rng(seed)
    parts = []
    for movie, dur in targets.durations.items():
        t = np.arange(0, dur, 1 / FPS)
        v = noise * rng.standard_normal(len(t))
        for b in targets.truth[movie]:
            c = (b + shift_s) % dur
            v += np.exp(-0.5 * ((t - c) / 0.5) ** 2)
        parts.append(pd.DataFrame({"movie": movie, "frame": np.arange(len(t)), "time_s": t, "bump": v}))
    return pd.concat(parts, ignore_index=True)


def test_aligned_signal_scores_high_and_shifted_does_not():
    tg = _targets()
    good = bd.comparison_table(_signals(tg), tg, n_null=300).set_index("signal")
    far = bd.comparison_table(_signals(tg, shift_s=6.0), tg, n_null=300).set_index("signal")
    assert good.loc["bump", "r_observers"] > 0.4 and good.loc["bump", "p_observers"] < 0.01
    assert good.loc["bump", "r_truth"] > 0.4 and good.loc["bump", "f1"] > 0.9
    assert far.loc["bump", "r_observers"] < 0.1 and far.loc["bump", "p_observers"] > 0.05
    assert far.loc["bump", "f1"] < 0.2
    # the observers themselves find the true boundaries
    assert good.loc["observers", "f1"] > 0.8
    across = bd.r_across_bins(_signals(tg), tg, bin_sizes=(0.5, 2, 8), n_null=200)
    assert (across["r"] > across["null_hi"]).all()
    # every figure has its interval; the aligned signal's F1 interval lies above the shifted one's
    for m in ("r_observers", "r_truth", "f1"):
        g = good.dropna(subset=[m])
        assert len(g) and (g[f"{m}_lo"] <= g[m]).all() and (g[m] <= g[f"{m}_hi"]).all()
    assert good.loc["bump", "f1_lo"] > far.loc["bump", "f1_hi"]


def test_paired_comparison_and_fine_truth():
    tg = _targets()
    sig = _signals(tg).rename(columns={"bump": "aligned"})
    sig["late"] = _signals(tg, shift_s=1.6, seed=2)["bump"]
    tg.fine = {m: np.sort(np.concatenate([t, t[:-1] + np.diff(t) / 2])) for m, t in tg.truth.items()}
    cmp = bd.Comparison(sig, tg)
    assert cmp.metrics() == ["r_observers", "r_truth", "f1", "f1_fine"]
    res = cmp.paired("aligned", "late", "f1", n_boot=500)
    assert res.diff > 0.5 and res.p < 0.01 and res.lo > 0
    kinds = sig.rename(columns={"aligned": "latent_speed", "late": "flow_magnitude"})
    across = bd.r_across_bins(kinds, tg, bin_sizes=(0.5, 2), n_null=20, n_boot=200)
    assert (across["r_lo"] <= across["r"]).all() and (across["r"] <= across["r_hi"]).all()
    by_bin = comparison.latent_vs_pixel_by_bin(kinds, tg, across, n_boot=200)
    assert list(by_bin["bin_s"]) == [0.5, 2.0] and by_bin.loc[0, "best_latent"] == "latent_speed"
    assert by_bin.loc[0, "diff"] > 0.3 and by_bin.loc[0, "lo"] > 0 and by_bin.loc[0, "p_latent"] < 0.01
    assert by_bin.loc[0, "p_pixel"] > 0.5 and by_bin.loc[0, "verdict"] == "latent leads"
    text = boundary_report.conclusion(bd.comparison_table(kinds, tg, n_null=20, n_boot=100), pd.DataFrame(), by_bin)
    assert "The latents lead at 0.5" in text and "simultaneous 95% intervals" in text
    flat = bd.comparison_table(sig.assign(late=0.0), tg, n_null=20, n_boot=50).set_index("signal")
    assert flat.loc["late", "r_observers"] == 0 and flat.loc["late", "note"].startswith("constant in every movie")
    assert flat.loc["aligned", "note"] == ""
    same = cmp.paired("aligned", "aligned", "f1", n_boot=200)
    assert same.diff == 0 and same.p == 1.0
    table = bd.comparison_table(sig, tg, n_null=50, n_boot=200)
    # the fine truth has twice the boundaries; the signal peaks only at the coarse half (F1 near 1/2)
    row = table.set_index("signal").loc["aligned"]
    assert 0.4 < row["f1_fine"] < 0.75 < row["f1"]
    assert comparison.best_of_kind(table.assign(kind=["latent", "pixel", "human"]), "f1", "latent") == "aligned"


def _ar1(n, phi, rng):
    """AR(1) noise with coefficient ``phi`` (stationary start), or a random walk for ``phi == 1``."""
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0] / np.sqrt(1 - phi ** 2) if phi < 1 else e[0]
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


@pytest.mark.parametrize("phi", [0.0, 0.8, 0.95, 0.99, 1.0])
def test_null_p_values_are_uniform_for_unrelated_signals(phi):
    """Unrelated signals, from white noise to a random walk, are called significant at 0.05 about 5% of the
    time, against boundary frequencies as they are and with a slow trend added (where the old circular-shift
    null let through 13-19% for phi >= 0.98)."""
    tg = _targets(duration=200.0)
    base = [tg.frequency(m, 1.0) for m in tg.durations]
    rng = np.random.default_rng(7)
    ps = []
    for rep in range(300):
        ys = base if rep % 2 else [y + 2 * y.std() * np.linspace(0, 1, len(y)) for y in base]
        xs = [_ar1(len(y), phi, rng) for y in ys]
        ps.append(st.surrogate_test(xs, ys, n_null=199, rng=rng).p)
    ps = np.asarray(ps)
    assert 0.02 <= (ps <= 0.05).mean() <= 0.085
    if phi == 0.0:
        assert stats.kstest(ps, "uniform").pvalue > 0.001


def test_surrogates_keep_a_signals_autocorrelation():
    rng = np.random.default_rng(0)
    for phi in (0.0, 0.9, 1.0):
        x = _ar1(400, phi, rng)
        s = st.phase_surrogates(x, 200, rng)
        ac = lambda v: np.corrcoef(v[..., 1:].ravel(), v[..., :-1].ravel())[0, 1]  # noqa: E731
        assert abs(ac(s) - ac(x)) < 0.1
        assert s.mean(1) == pytest.approx(np.full(200, x.mean()), abs=0.5 * x.std())
    with pytest.raises(ValueError, match="too short"):
        st.phase_surrogates(np.zeros(2), 5, rng)


def test_precision_recall_f1_counts_one_to_one():
    assert bd.match_boundaries(np.array([1.0, 1.2, 5.0]), np.array([1.1, 9.0]), 1.0) == 1
    p, r, f1 = bd.precision_recall_f1([np.array([1.0, 1.2, 5.0])], [np.array([1.1, 9.0])], 1.0)
    assert (p, r) == (pytest.approx(1 / 3), 0.5) and f1 == pytest.approx(0.4)
    assert bd.precision_recall_f1([np.array([])], [np.array([3.0])]) == (0.0, 0.0, 0.0)


def test_prediction_error_is_cross_fitted():
    rng = np.random.default_rng(0)
    white = [rng.standard_normal((300, 8)) for _ in range(2)]
    e = np.concatenate(sg.prediction_error(white, n_lags=10, n_folds=5, ridge=1e-3))
    # unpredictable noise: a held-out model cannot beat the variance (an in-sample fit with 80 inputs would)
    assert np.nanmean(e) > 0.95
    # a predictable series (slow sines) is predicted well
    t = np.arange(600)[:, None]
    smooth_z = [np.sin(t / 15.0 + np.arange(4)) + 0.05 * rng.standard_normal((600, 4))]
    assert np.nanmean(sg.prediction_error(smooth_z, n_lags=3)[0]) < 0.05


def test_change_points_find_planted_jumps():
    rng = np.random.default_rng(0)
    z = np.concatenate([np.full((100, 6), v) for v in (0.0, 2.0, -1.0)]) + 0.3 * rng.standard_normal((300, 6))
    cp = sg.change_points(z, fps=FPS, n_bkps=2, rate_hz=5)
    assert len(cp) == 2 and abs(cp[0] - 100) <= 2 and abs(cp[1] - 200) <= 2
    assert len(sg.change_points(z, fps=FPS, rate_hz=5)) == 2   # the default penalty finds the same


def test_pixel_baselines_peak_at_a_cut_and_measure_motion():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    frames = np.stack([a] * 10 + [b] * 10)
    for f in (sg.frame_difference(frames), sg.content_score(frames, FPS)):
        assert int(np.argmax(f)) == 10 and f[5] == 0
    tex = cv_blur(rng.integers(0, 255, (64, 96), dtype=np.uint8))
    moving = np.stack([np.repeat(tex[:, i * 2: i * 2 + 48, None], 3, axis=2) for i in range(6)])
    still = np.stack([np.repeat(tex[:, :48, None], 3, axis=2)] * 6)
    assert sg.flow_magnitude(moving).mean() > 1.0 > 0.1 > sg.flow_magnitude(still).mean()


def cv_blur(x):
    import cv2
    return cv2.GaussianBlur(x, (0, 0), 2)


def test_compute_signals_and_bad_inputs():
    rng = np.random.default_rng(0)
    index = pd.DataFrame({"movie": ["a"] * 80 + ["b"] * 60,
                          "frame": list(range(80)) + list(range(60))})
    index["time_s"] = index["frame"] / FPS
    z = rng.standard_normal((140, 4))
    frames = rng.integers(0, 255, (140, 16, 16, 3), dtype=np.uint8)
    sig = sg.compute_signals(index, z, frames, {"a": FPS, "b": FPS}, progress=False,
                             n_bkps={"a": 2, "b": 1})
    present = [n for n in sg.SIGNALS if not n.endswith(sg.VOXEN_SUFFIX)]      # no VoxEn trajectory given
    assert list(sig.columns[3:]) == present + list(sg.LABELS)
    assert sg.signal_names(sig) == present          # event labels are not signals
    assert np.isfinite(sig[present + list(sg.LABELS)].to_numpy()).all()
    assert sig.groupby("movie")["change_points"].sum().to_dict() == {"a": 2, "b": 1}
    with pytest.raises(ValueError, match="latents have 139 rows but the frame index has 140"):
        sg.compute_signals(index, z[:-1], frames, {"a": FPS, "b": FPS}, progress=False)
    lone = pd.concat([index, pd.DataFrame({"movie": ["c"], "frame": [0], "time_s": [0.0]})], ignore_index=True)
    with pytest.raises(ValueError, match="movie 'c' has 1 frame"):
        sg.compute_signals(lone, np.vstack([z, z[:1]]), None, {"a": FPS, "b": FPS, "c": FPS}, progress=False)
    short = pd.concat([index, pd.DataFrame({"movie": ["c"] * 5, "frame": range(5), "time_s": np.arange(5) / FPS})],
                      ignore_index=True)
    with pytest.raises(ValueError, match="movie 'c' has 5 frames; the prediction error needs at least 11"):
        sg.compute_signals(short, np.vstack([z, z[:5]]), None, {"a": FPS, "b": FPS, "c": FPS}, progress=False)
    flat = sg.compute_signals(index, np.zeros_like(z), None, {"a": FPS, "b": FPS}, progress=False)
    assert np.isfinite(flat[sg.signal_names(flat)].to_numpy()).all()       # constant latents: finite, no events
    tg = bd.Targets({"a": 8.0, "b": 6.0},
                    pd.DataFrame({"subject": ["s", "s"], "condition": "c", "movie": ["a", "x"], "time_s": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="movie 'b' is absent from the annotations"):
        bd.comparison_table(sig, tg, n_null=10)
    tg.presses = pd.DataFrame({"subject": ["s", "s"], "condition": "c", "movie": ["a", "b"], "time_s": [1.0, 7.5]})
    with pytest.raises(ValueError, match="past the movie's end"):
        bd.comparison_table(sig, tg, n_null=10)


def test_event_scrubber_moves_its_cursor():
    import cv2

    from vaelib import widgets

    rng = np.random.default_rng(0)
    n = 50
    frames = rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
    t = np.arange(n) / FPS
    pics = widgets.EventScrubberPictures(frames, frames[:, ::-1], rng.standard_normal((n, 2)), t,
                                         {"speed": rng.random(n)}, boundaries=np.array([2.0]), scale=2,
                                         labels={"SEM events": np.repeat([0, 1, 0, 2, 2], 10)})
    plain = widgets.EventScrubberPictures(frames, frames, np.zeros((n, 2)), t, {"speed": rng.random(n)}, scale=2)
    assert pics.signals(0).shape[0] > plain.signals(0).shape[0]        # the label band is a row of its own
    view = widgets.event_scrubber(pics, "m")
    first = {k: im.value for k, im in view.images.items()}
    view.slider.value = 3.0
    assert pics.index_at(3.0) == 30
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(view.images["frame"].value, np.uint8), 1), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(decoded[::2, ::2], frames[30])
    for k in ("frame", "reconstruction", "trajectory", "signals"):
        assert view.images[k].value != first[k], k
    with pytest.raises(ValueError, match="trajectory has 49 rows"):
        widgets.EventScrubberPictures(frames, frames, np.zeros((49, 2)), t, {})
    with pytest.raises(ValueError, match="SEM events has 49 rows"):
        widgets.EventScrubberPictures(frames, frames, np.zeros((n, 2)), t, {}, labels={"SEM events": np.zeros(49)})


def _chapter_inputs(data, seconds, activity_seconds):
    """What chapter 3 reads, made small: synthetic movies (chapter 1), stand-in latents (pixel PCA) for chapter 2's
    and an untrained MMD-VAE run folder (chapter 3 decodes the shown movie's codes with its model)."""
    from vaelib.data import split_frames
    from vaelib.mmdvae import MMDVAEConfig
    from vaelib.mmdvae_train import train_mmdvae
    from vaelib.preprocess import preprocess
    from vaelib.synthetic import make_synthetic_dataset
    from vaelib.train import TrainConfig

    make_synthetic_dataset(data / "synthetic", n_movies=2, seconds=seconds, seed=1, n_observers=6,
                           activity_seconds=activity_seconds)
    fs = preprocess(data / "synthetic" / "videos", data / "frames", size=64, stride=3, progress=False)   # VoxEn: 64
    x = np.asarray(fs.frames, dtype=np.float32).reshape(len(fs), -1)
    x -= x.mean(0)
    z = x @ np.linalg.svd(x, full_matrices=False)[2][:8].T
    (data / "mmd_vae").mkdir()
    np.save(data / "mmd_vae" / "embeddings.npy", z.astype(np.float32))
    cfg = MMDVAEConfig.from_preset("default", z_dim=8, image_size=64)
    train_mmdvae(fs, split_frames(fs.index), data / "mmd_vae" / "run", cfg,
                 train_cfg=TrainConfig(steps=1, batch_size=4, device="cpu"), progress=False)
    return fs, z


@pytest.mark.slow
def test_chapter_runs_on_a_few_second_movie(tmp_path):
    """Two 5.3-s movies with the 4-s and 8-s bins asked for: the chapter runs, leaves those widths out with a
    message, and reports no interval or test where two events are all there is."""
    import json

    import nbformat

    from vaelib.book import SMOKE_PARAMETERS, run_chapter

    data = tmp_path / "data"
    _chapter_inputs(data, 5.3, (2.0, 3.0))
    params = dict(SMOKE_PARAMETERS["03_event_boundaries"], data_dir=str(data), figures_dir=str(tmp_path / "fig"),
                  bin_sizes=[0.2, 1.0, 4.0, 8.0])
    nb = run_chapter("03_event_boundaries", params, out_dir=tmp_path / "nb", progress=False)
    text = "".join(o.get("text", "") for c in nbformat.read(nb, as_version=4).cells for o in c.get("outputs", []))
    assert "bin widths 4, 8 s left out: movie 'synth01' (5.3 s)" in text
    metrics = json.loads((data / "event_boundaries" / "metrics.json").read_text())
    assert {v["verdict"] for v in metrics["latent_vs_pixel"]} == {"too little data to resample (2 units)"}
    assert "no test" in metrics["conclusion"] and "leads:" not in metrics["conclusion"]


@pytest.mark.slow
def test_chapter_runs_on_tiny_data(tmp_path):
    """Chapter 3 end to end on a tiny synthetic set (:func:`_chapter_inputs`)."""
    import json

    from vaelib.book import SMOKE_PARAMETERS, run_chapter

    data = tmp_path / "data"
    fs, z = _chapter_inputs(data, 20, (6.0, 9.0))
    params = dict(SMOKE_PARAMETERS["03_event_boundaries"], data_dir=str(data), figures_dir=str(tmp_path / "fig"))
    run_chapter("03_event_boundaries", params, out_dir=tmp_path / "nb", progress=False)
    res = json.loads((data / "event_boundaries" / "comparison.json").read_text())
    rows = {r["signal"]: r for r in res["results"]}
    assert set(rows) == set(sg.SIGNALS) | {"observers"}         # the _voxen rows too
    assert res["meta"]["voxen_lambda"] == 0.0018
    assert all(-1 <= rows[s]["r_observers"] <= 1 for s in sg.SIGNALS)
    for r in rows.values():
        assert all(0 <= r[k] <= 1 for k in ("precision", "recall", "f1", "p_truth"))
    assert res["meta"]["movies"] == fs.movies and res["meta"]["simulated_observers"] is True
    assert (data / "event_boundaries" / "comparison.csv").exists()
    # the take-away is computed from this run: its sentences carry this run's numbers
    metrics = json.loads((data / "event_boundaries" / "metrics.json").read_text())
    assert "**Bottom line:**" in metrics["conclusion"]
    best = max((r for r in res["results"] if r["kind"] != "human"), key=lambda r: r["r_observers"])
    assert f"`{best['signal']}`" in metrics["conclusion"] and f"{best['r_observers']:.3f}" in metrics["conclusion"]
    assert {v["metric"] for v in metrics["latent_vs_pixel"]} == {"r_observers", "r_truth", "f1", "f1_fine"}
    assert metrics["combined_detector"]["models"][0]["model"] == "pixel"
    for name in ("03_trajectory", "03_signals", "03_r_by_bin", "03_scrubber"):
        assert (tmp_path / "fig" / f"{name}.png").stat().st_size > 1000
    # bad inputs name what is wrong
    with pytest.raises(ValueError, match="absent from the annotations"):
        boundary_data.load_boundary_data(data, annotations=str(_other_movie_presses(tmp_path)))
    (data / "synthetic" / "boundaries.csv").write_text("movie,level,time_s\nelse,coarse,1.0\n")
    assert boundary_data.load_boundary_data(data).truth is None     # the default truth does not fit: skipped
    with pytest.raises(ValueError, match="absent"):
        boundary_data.load_boundary_data(data, boundaries_csv=str(data / "synthetic" / "boundaries.csv"))
    inputs = boundary_data.load_boundary_data(data)
    rows = fs.movie_rows(fs.movies[1])
    recon = inputs.reconstruct(rows)
    assert recon.shape == fs.frames[rows].shape and recon.dtype == np.uint8
    np.save(data / "mmd_vae" / "embeddings.npy", z[:, :4].astype(np.float32))
    with pytest.raises(ValueError, match="z_dim 8"):
        boundary_data.load_boundary_data(data).reconstruct(rows)
    (data / "mmd_vae" / "run" / "checkpoint.pt").unlink()
    with pytest.raises(FileNotFoundError, match="run chapter 2"):
        boundary_data.load_boundary_data(data).reconstruct(rows)
    np.save(data / "mmd_vae" / "embeddings.npy", z[:-1].astype(np.float32))
    with pytest.raises(ValueError, match="do not match"):
        boundary_data.load_boundary_data(data)


def _other_movie_presses(tmp_path):
    f = tmp_path / "other.dat"
    f.write_text("SubjNum\tCondition\tMovie\tMS\ne1\tw\tZ\t1000\n")
    return f


def test_paired_table_tells_a_better_signal_from_a_worse_one():
    tg = _targets()
    good, far = _signals(tg), _signals(tg, shift_s=6.0)
    sig = good.assign(latent_speed=good["bump"], latent_speed_memory=far["bump"], prediction_error=good["bump"])
    assert sg.temporal_pairs(sig) == [("latent_speed_memory", "latent_speed")]   # prediction_error has no twin
    pt = comparison.paired_table(sig, tg, sg.temporal_pairs(sig), n_boot=300).set_index("metric")
    assert set(pt.index) == {"r_observers", "r_truth", "f1"}
    assert (pt["diff"] < -0.3).all() and (pt["p"] < 0.01).all() and (pt["hi"] < 0).all()
    assert pt.loc["f1", "value_b"] > 0.9 > 0.2 > pt.loc["f1", "value_a"]
    # the chapter's and the benchmark's sentence: counted per kind of trajectory, one without rows left out
    text = boundary_report.temporal_context_text(pt.reset_index(), {sg.TEMPORAL_SUFFIX: "a memory",
                                                                     sg.VOXEN_SUFFIX: "VoxEn"})
    assert text == ("With a memory the latent signals match better in 0 and worse in 3 of 3 signal x measure pairs "
                    "(paired p < 0.05); no difference in the rest.")


def _declared_signals(tg):
    """A good latent signal (bumps at the truth), a pixel one that is late and one that is noise."""
    sig = _signals(tg).rename(columns={"bump": "sem_surprise"})
    sig["flow_magnitude"] = _signals(tg, shift_s=1.0, seed=2)["bump"]
    sig["frame_difference"] = np.random.default_rng(3).standard_normal(len(sig))
    return sig


def test_declared_signal_against_the_best_pixel_baseline():
    """The rival is the best pixel baseline on these data; the declared direction is tested with every pixel
    baseline in the null, the other direction as p_opposite; verdicts need every seed; bad requests are refused."""
    tg = _targets()
    sig = _declared_signals(tg)
    up = comparison.declared_vs_best_pixel(sig, tg, "sem_surprise", "r_truth", n_boot=300)
    assert up["rival"] == "flow_magnitude" and set(up["rivals"]) == {"flow_magnitude", "frame_difference"}
    assert up["diff"] > 0.5 and up["lo"] > 0 and up["p"] < 0.01 and up["p_opposite"] > 0.5
    down = comparison.declared_vs_best_pixel(sig, tg, "sem_surprise", "r_truth", "pixel_beats_latent", n_boot=300)
    assert down["diff"] == pytest.approx(-up["diff"]) and down["hi"] == pytest.approx(-up["lo"])
    assert down["p"] == up["p_opposite"] and down["p_opposite"] == up["p"]
    assert comparison.preregistered_verdict([up, up], 0.05) == "holds"
    assert comparison.preregistered_verdict([down, down], 0.05) == "opposite"
    assert comparison.preregistered_verdict([up, {**up, "p": 0.2}], 0.05) == "no verdict"
    with pytest.raises(ValueError, match="no test results"):
        comparison.preregistered_verdict([], 0.05)
    with pytest.raises(ValueError, match="'latent_speed' is not in the signal table"):
        comparison.declared_vs_best_pixel(sig, tg, "latent_speed", "f1")
    with pytest.raises(ValueError, match="direction must be one of"):
        comparison.declared_vs_best_pixel(sig, tg, "sem_surprise", "f1", "sideways")
    with pytest.raises(ValueError, match="'f1_fine' is not available"):
        comparison.declared_vs_best_pixel(sig, tg, "sem_surprise", "f1_fine")
    with pytest.raises(ValueError, match="no pixel baseline"):
        comparison.declared_vs_best_pixel(sig.drop(columns=["flow_magnitude", "frame_difference"]), tg, "sem_surprise",
                                          "f1")


def test_preregistration_is_read_checked_and_quoted(tmp_path):
    """The committed declaration reads; a broken one is refused naming the file and the field; chapter 3's conclusion
    quotes each verdict with its per-seed numbers, and says so plainly when a hypothesis fails."""
    import json

    from vaelib.paths import PROJECT_ROOT

    decl = boundary_data.read_preregistration(PROJECT_ROOT / "benchmarks" / "preregistered.json")
    assert decl["data"]["data_seed"] == 23 and [h["id"] for h in decl["hypotheses"]][0] == "H1"
    for change, message in (({"data": {}}, "section 'data' lacks"),
                            ({"hypotheses": [{**decl["hypotheses"][0], "latent": "flow_magnitude"}]},
                             "'flow_magnitude' is not a latent signal"),
                            ({"hypotheses": [{**decl["hypotheses"][0], "metric": "auc"}]}, "metric 'auc'"),
                            ({"hypotheses": [{**decl["hypotheses"][0], "alpha": 5}]}, "alpha 5 must lie"),
                            ({"hypotheses": decl["hypotheses"][:1] * 2}, "ids repeat"),
                            ({"train": {**decl["train"], "seeds": [0]}}, "at least two training seeds"),
                            ({"hypotheses": [{**decl["hypotheses"][0], "latent": "prediction_error_voxen"}]},
                             "needs the VoxEn trajectory: declare analysis.voxen_lambda")):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**decl, **change}))
        with pytest.raises(ValueError, match=f"bad.json: .*{message}"):
            boundary_data.read_preregistration(bad)
    (tmp_path / "cut.json").write_text("{")
    with pytest.raises(ValueError, match="cut.json: cannot read"):
        boundary_data.read_preregistration(tmp_path / "cut.json")
    tg = _targets()
    test = comparison.declared_vs_best_pixel(_declared_signals(tg), tg, "sem_surprise", "r_truth", n_boot=200)
    h1, h2 = decl["hypotheses"][:2]
    results = {"preregistered": {"file": "benchmarks/preregistered.json", "declared_in_commit": "fd9d5d5abc 2026",
                                 "declaration": decl, "hypotheses": [
                                     {**h1, "per_seed": {"7": test, "8": test}, "verdict": "holds"},
                                     {**h2, "per_seed": {"7": test, "8": {**test, "diff": -0.01}},
                                      "verdict": "no verdict"}]}}
    pre = boundary_report.preregistered_summary(results)
    assert pre["commit"] == "fd9d5d5" and pre["hypotheses"][1]["diffs"][1] == -0.01 and pre["rule"] == "declared"
    assert boundary_report.preregistered_summary({"summary": {}}) is None
    text = boundary_report.preregistered_appendix(None, pre)
    assert "an earlier rule" in text and "declared in commit fd9d5d5" in text and "data seed 23" in text
    assert " fps" not in text                                    # no meta: no frame rate claimed
    assert "H1, SEM surprise" in text and "**holds** in every seed" in text
    assert "H2, " in text and "**fails**: not in every seed with p < alpha" in text and "rival `flow_magnitude`" in text
    assert f"difference per seed 7: {test['diff']:+.3f}" in text and "8: -0.010" in text
    assert "the rival is the best of the pixel baselines `flow_magnitude`, `frame_difference` on that draw" in text
    # the take-away names which declared claims held; the details stay in the appendix
    bottom = boundary_report.conclusion(_table_for_prereg(), pd.DataFrame(), prereg=pre)
    assert bottom.endswith("On the book's synthetic movies, of the claims declared in advance and tested on new "
                           "draws, H1 (SEM surprise on the MMD-VAE codes beats the best pixel baseline on r with the "
                           "true coarse boundaries (1-s bins)) held; H2 did not (appendix).")
    assert "Pre-registered" not in bottom
    voxen = {**pre, "hypotheses": [{**pre["hypotheses"][0], "latent": "prediction_error_voxen"}]}
    assert "VoxEn rows do not depend on them" in boundary_report.preregistered_appendix(None, voxen)
    assert "VoxEn rows do not depend on them" not in text
    # the lead rule: the committed declaration reads; a wrong claim is refused; its verdicts are quoted per seed
    lead = boundary_data.read_preregistration(PROJECT_ROOT / "benchmarks" / "preregistered_lead.json")
    assert lead["rule"] == "lead" and [h["claim"] for h in lead["hypotheses"]] == [
        "pixel_leads", "pixel_leads", "latent_leads"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**lead, "hypotheses": [{**lead["hypotheses"][0], "claim": "tie"}]}))
    with pytest.raises(ValueError, match="bad.json: hypothesis 'L1': claim 'tie' is not one of"):
        boundary_data.read_preregistration(bad)
    up = comparison.declared_lead(_declared_signals(tg), tg, "latent_leads", "r_truth", 0.05, n_boot=300)
    results = {"meta": {"data": {"fps": 10.0}}, "preregistered": {
        "declared_in_commit": "abcdef123 2026", "declaration": lead, "hypotheses": [
            {**lead["hypotheses"][2], "per_seed": {"61": up, "62": up}, "verdict": "holds"},
            {**lead["hypotheses"][0], "per_seed": {"61": {**up, "bound": -0.1}, "62": up},
             "verdict": "does not hold"}]}}
    pre_lead = boundary_report.preregistered_summary(results)
    text = boundary_report.preregistered_appendix(None, [pre_lead, pre])
    assert text.index("the lead rule") < text.index("an earlier rule") and "declared in commit abcdef1" in text
    assert "L3, the best latent signal leads" in text and "**holds** in every seed" in text
    assert f"61: `sem_surprise` over `flow_magnitude` by {up['diff']:+.3f} (lower bound {up['bound']:+.3f}" in text
    assert "L1, the best pixel baseline leads" in text and "**does not hold**" in text and "at 10 fps" in text
    assert boundary_report.conclusion(_table_for_prereg(), pd.DataFrame(), prereg=[pre_lead, pre]).endswith(
        "L3 (the best latent signal leads the strongest pixel baseline on r with the true coarse boundaries (1-s "
        "bins)); H1 (SEM surprise on the MMD-VAE codes beats the best pixel baseline on r with the true coarse "
        "boundaries (1-s bins)) held; L1, H2 did not (appendix).")


def test_declared_lead_and_its_verdict():
    """A declared lead: the best of the claiming kind against the strongest of the other, its bound above 0 exactly
    when p < alpha with the claimant ahead; the mirror claim does not hold; bad requests are refused."""
    tg = _targets()
    sig = _declared_signals(tg)
    up = comparison.declared_lead(sig, tg, "latent_leads", "r_truth", 0.05, n_boot=300)
    assert up["best"] == "sem_surprise" and up["rival"] == "flow_magnitude" and up["candidates"] == ["sem_surprise"]
    assert up["diff"] > 0.5 and up["bound"] > 0 and up["p"] < 0.01 and up["bound"] < up["diff"]
    down = comparison.declared_lead(sig, tg, "pixel_leads", "r_truth", 0.05, n_boot=300)
    assert down["best"] == "flow_magnitude" and down["rival"] == "sem_surprise" and down["bound"] < 0
    assert set(down["candidates"]) == {"flow_magnitude", "frame_difference"}
    assert comparison.lead_verdict([up, up]) == "holds" and comparison.lead_verdict([up, down]) == "does not hold"
    with pytest.raises(ValueError, match="no test results"):
        comparison.lead_verdict([])
    with pytest.raises(ValueError, match="claim must be one of"):
        comparison.declared_lead(sig, tg, "tie", "f1", 0.05)
    with pytest.raises(ValueError, match="'f1_fine' is not available"):
        comparison.declared_lead(sig, tg, "latent_leads", "f1_fine", 0.05)
    with pytest.raises(ValueError, match="needs latent and pixel signals"):
        comparison.declared_lead(sig.drop(columns=["flow_magnitude", "frame_difference"]), tg, "latent_leads", "f1",
                                 0.05)


def test_a_few_second_movie(capsys):
    """Movies of 5.3 s with one boundary each: bin widths that leave a movie fewer than three bins are left out
    with a message (no crash in the surrogates), and too few events give no interval and no test, said so."""
    rng = np.random.default_rng(0)
    durations = {"a": 5.3, "b": 5.3}
    truth = {"a": np.array([2.5]), "b": np.array([3.0])}
    presses = pd.DataFrame([(f"s{o}", "c", m, float(truth[m][0] + rng.normal(0.5, 0.2)))
                            for o in range(6) for m in durations], columns=["subject", "condition", "movie", "time_s"])
    tg = bd.Targets(durations, presses, truth)
    parts = []
    for m, dur in durations.items():
        t = np.arange(0, dur, 1 / FPS)
        parts.append(pd.DataFrame({"movie": m, "frame": np.arange(len(t)), "time_s": t,
                                   "latent_speed": np.exp(-0.5 * ((t - truth[m][0]) / 0.5) ** 2),
                                   "flow_magnitude": rng.standard_normal(len(t))}))
    sig = pd.concat(parts, ignore_index=True)
    across = bd.r_across_bins(sig, tg, (0.2, 1.0, 4.0, 8.0), n_null=20, n_boot=50)
    assert sorted(set(across["bin_s"])) == [0.2, 1.0]
    assert "bin widths 4, 8 s left out: movie 'a' (5.3 s) would have fewer than 3 bins" in capsys.readouterr().out
    table = bd.comparison_table(sig, tg, n_null=20, n_boot=50)
    assert table["f1_lo"].isna().all() and table["f1"].notna().all()          # 2 events: no interval
    versus = comparison.best_latent_vs_pixel(sig, tg, table, n_boot=50)
    assert (versus["verdict"] == "too little data to resample (2 units)").all() and versus["p"].isna().all()
    by_bin = comparison.latent_vs_pixel_by_bin(sig, tg, across, n_boot=50)
    text = boundary_report.conclusion(table, versus, by_bin)
    assert "too little data to resample (2 units): no test" in text and "leads:" not in text
    assert "(too little data for an interval)." in text and "95% interval over events" not in text
    lags = comparison.lag_table(sig, tg, n_null=20, n_boot=50)
    assert lags[["r_lag_lo", "r_lag_hi"]].isna().all().all() and lags["r_lag"].notna().all()
    pair = bd.Comparison(sig, tg).paired("latent_speed", "flow_magnitude", "r_observers")
    assert np.isnan(pair.p) and np.isnan(pair.lo) and np.isfinite(pair.diff)


def test_a_constant_signal_is_drawn_as_such():
    """A signal that is constant in a movie gets a panel that says so, not an empty flat line."""
    from vaelib import plots

    t = np.arange(0, 20, 0.1)
    sig = pd.DataFrame({"movie": "m", "frame": np.arange(len(t)), "time_s": t, "latent_speed": np.sin(t),
                        "sem_boundaries_voxen": np.zeros(len(t))})
    fig = plots.boundary_signals(sig, "m", None)
    said = [x.get_text() for a in fig.axes for x in a.texts]
    assert said == ["constant (0) in this movie: no boundaries"]


def _table_for_prereg():
    return pd.DataFrame([{"signal": "sem_surprise", "kind": "latent", "r_observers": 0.1, "r_observers_lo": 0.0,
                          "r_observers_hi": 0.2}])


def _scene_movie(n, change, a, b, rng):
    """``n`` 64x64 frames of a blocky random scene ``a`` that cuts to scene ``b`` at frame ``change``, with noise."""
    def scene(seed):
        img = (np.random.default_rng(seed).random((8, 8, 3)) * 255).astype(np.uint8)
        return np.kron(img, np.ones((8, 8, 1), np.uint8))
    f = np.stack([scene(a)] * n)
    f[change:] = scene(b)
    return np.clip(f + rng.normal(0, 4, f.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def voxen_model():
    """The committed VoxEn model chapter 3 uses (weights/voxen_events/lambda_0.0018)."""
    return boundary_data.pretrained_voxen(0.0018)


def test_voxen_trajectory_shape_time_alignment_and_a_planted_change(voxen_model):
    """One vector per 16-frame latent step brought back to every frame (held or interpolated), aligned with the
    frame index of each movie; a cut in a static scene moves it most at the step boundaries next to the cut."""
    rng = np.random.default_rng(0)
    frames = np.concatenate([_scene_movie(100, 40, 1, 2, rng), _scene_movie(45, 20, 3, 4, rng)])
    index = pd.DataFrame({"movie": ["a"] * 100 + ["b"] * 45, "frame": np.r_[0:100, 0:45]})
    assert voxen_model.config.total_stride[0] == 16
    full = boundary_data.voxen_trajectory(frames, index, voxen_model, how="hold", n_dims=None)
    assert full.shape == (145, 96) and np.isfinite(full).all()
    held = boundary_data.voxen_trajectory(frames, index, voxen_model, how="hold")
    assert held.shape == (145, 10)          # 7 + 3 latent steps: at most 10 principal components
    a = held[:100]
    # held: constant within each 16-frame step (frames 0-15, 16-31, ...), the last step cut at the movie's end
    assert all(np.allclose(a[k:k + 16], a[k]) for k in range(0, 100, 16))
    speed = sg.latent_speed(a)
    jumps = {k: speed[k] for k in range(16, 100, 16)}
    assert max(jumps, key=jumps.get) in (32, 48)      # the step holding the cut (32-47) begins or ends there
    assert min(jumps[32], jumps[48]) > 1.5 * max(v for k, v in jumps.items() if k not in (32, 48))
    # movie order and rows follow the index, not the frame array's movie blocks
    swapped = boundary_data.voxen_trajectory(frames[np.r_[100:145, 0:100]], index.iloc[np.r_[100:145, 0:100]],
                                             voxen_model, how="hold", n_dims=None)
    assert np.allclose(swapped[45:], full[:100], atol=1e-4) and np.allclose(swapped[:45], full[100:], atol=1e-4)
    smooth = boundary_data.voxen_trajectory(frames, index, voxen_model)
    peak = int(np.argmax(sg.latent_speed(smooth[:100])))
    assert abs(peak - 40) <= 24                       # interpolated between step centres: within 1.5 steps
    with pytest.raises(ValueError, match="frames have 144 rows but the frame index has 145"):
        boundary_data.voxen_trajectory(frames[:-1], index, voxen_model)
    with pytest.raises(ValueError, match="VoxEn codes 64x64 RGB frames, got frames shaped \\(32, 32, 3\\)"):
        boundary_data.voxen_trajectory(frames[:, ::2, ::2], index, voxen_model)
    with pytest.raises(ValueError, match="no VoxEn reference model with lambda 0.5"):
        boundary_data.pretrained_voxen(0.5)


def test_voxen_rows_are_latent_signals_of_the_comparison(voxen_model):
    """The VoxEn trajectory gives the TEMPORAL signals again (suffix _voxen), scored and paired like every latent
    signal; a trajectory whose length differs from the frame index is refused naming both lengths."""
    rng = np.random.default_rng(1)
    frames = np.concatenate([_scene_movie(160, 70, 1, 2, rng), _scene_movie(160, 90, 3, 4, rng)])
    index = pd.DataFrame({"movie": ["a"] * 160 + ["b"] * 160, "frame": np.r_[0:160, 0:160],
                          "time_s": np.r_[0:160, 0:160] / FPS})
    z = rng.standard_normal((320, 4))
    vox = boundary_data.voxen_trajectory(frames, index, voxen_model, n_dims=4)
    sig = sg.compute_signals(index, z, None, {"a": FPS, "b": FPS}, temporal=False, voxen=vox, progress=False)
    names = [n + sg.VOXEN_SUFFIX for n in sg.TEMPORAL]
    assert all(n in sig and sg.SIGNALS[n][0] == "latent" for n in names)
    assert sig["sem_boundaries_voxen"].isin([0, 1]).all() and np.isfinite(sig[names].to_numpy()).all()
    assert ("latent_speed_voxen", "latent_speed") in sg.temporal_pairs(sig)
    tg = bd.Targets({"a": 16.0, "b": 16.0}, None, {"a": np.array([7.0]), "b": np.array([9.0])})
    table = bd.comparison_table(sig, tg, n_null=20, n_boot=50).set_index("signal")
    assert table.loc["latent_speed_voxen", "kind"] == "latent" and pd.notna(table.loc["latent_speed_voxen", "r_truth"])
    # at the trajectory's own step (16 frames), the event models see one sample per step: boundaries on its grid
    native = sg.compute_signals(index, z, None, {"a": FPS, "b": FPS}, temporal=False, voxen=vox, voxen_step_frames=16,
                                progress=False)
    marks = native["sem_boundaries_voxen"].to_numpy() > 0
    assert marks.any() and (native["frame"].to_numpy()[marks] % 16 == 0).all()
    with pytest.raises(ValueError, match="voxen_step_frames must be a positive number of frames, got 0"):
        sg.compute_signals(index, z, None, {"a": FPS, "b": FPS}, temporal=False, voxen=vox, voxen_step_frames=0,
                           progress=False)
    with pytest.raises(ValueError, match=r"VoxEn trajectory has shape \(319, 4\) \(319 rows\) but the frame index "
                                         r"has 320 rows"):
        sg.compute_signals(index, z, None, {"a": FPS, "b": FPS}, temporal=False, voxen=vox[:-1], progress=False)


def test_chapter_reads_the_committed_benchmark_results(tmp_path, capsys):
    """The spread and the pre-registered verdicts chapter 3 quotes: read from the committed results; a missing file
    is said and left out, one that is not JSON is refused naming it; results without a declaration add nothing."""
    from vaelib.paths import PROJECT_ROOT

    res = PROJECT_ROOT / "benchmarks" / "results"
    spread, prereg = boundary_data.read_benchmark_results(res / "boundaries.json", [
        res / "boundaries_prereg.json", tmp_path / "gone.json", res / "boundaries.json"])
    assert spread["seeds"] == [0, 1, 2] and spread["ranges"]
    assert [h["id"] for pre in prereg for h in pre["hypotheses"]] == ["H1", "H2", "H3", "H4"]
    # the lead rule's draw, declared in its own commit before the draw's results
    [lead] = boundary_data.read_benchmark_results("", [res / "boundaries_prereg_lead.json"])[1]
    assert lead["rule"] == "lead" and lead["seeds"] == [61, 62, 63] and lead["data"]["data_seed"] == 5077
    assert [(h["id"], h["verdict"]) for h in lead["hypotheses"]] == [("L1", "holds"), ("L2", "does not hold"),
                                                                    ("L3", "holds")]
    assert all((min(h["bounds"]) > 0) == (h["verdict"] == "holds") for h in lead["hypotheses"])
    assert "gone.json not found: not quoted" in capsys.readouterr().out
    assert boundary_data.read_benchmark_results("", []) == (None, [])
    assert len(boundary_data.read_benchmark_results("", str(res / "boundaries_prereg.json"))[1]) == 1   # one path
    (tmp_path / "cut.json").write_text("{")
    with pytest.raises(ValueError, match="cut.json is not JSON"):
        boundary_data.read_benchmark_results(tmp_path / "cut.json")


def test_a_bin_longer_than_a_movie_is_refused_by_name():
    tg = bd.Targets({"a": 5.3}, None, {"a": np.array([2.5])})
    sig = pd.DataFrame({"movie": "a", "frame": np.arange(53), "time_s": np.arange(53) / FPS, "latent_speed": 0.0})
    with pytest.raises(ValueError, match="bin_s 4 s cuts movie 'a' \\(5.3 s\\) into fewer than 3 bins"):
        bd.comparison_table(sig, tg, bin_s=4.0)


def test_book_synthetic_follows_chapter_ones_record(tmp_path):
    """The committed synthetic benchmark is quoted on the synthetic movies with their simulated observers: chapter
    1's record decides which movies they are, and only without a record do the presses alone decide."""
    import json

    from vaelib import provenance

    data = tmp_path / "data"
    (data / "frames").mkdir(parents=True)
    (data / "frames" / "manifest.json").write_text(json.dumps({"videos": [{"movie": "a"}]}))
    own = tmp_path / "own.dat"
    own.write_text("SubjNum\tCondition\tMovie\tMS\n")
    assert not boundary_data.book_synthetic(data)                      # no record, no simulated presses
    (data / "synthetic").mkdir()
    (data / "synthetic" / "observers.dat").write_text("SubjNum\tCondition\tMovie\tMS\n")
    assert boundary_data.book_synthetic(data)                          # no record: the simulated presses decide
    assert not boundary_data.book_synthetic(data, str(own))
    provenance.write_record(data, tmp_path / "my movies", ["a"], own)  # a user's movies beside stale synthetic files
    assert not boundary_data.book_synthetic(data) and not boundary_data.book_synthetic(data, str(own))
    provenance.write_record(data, "synthetic", ["a"])
    assert boundary_data.book_synthetic(data)
    assert boundary_data.book_synthetic(data, str(data / "synthetic" / "observers.dat"))
    assert not boundary_data.book_synthetic(data, str(own))           # the synthetic movies, other presses
    (data / "frames" / "manifest.json").write_text(json.dumps({"videos": [{"movie": "b"}]}))
    assert provenance.read_record(data) is None and boundary_data.book_synthetic(data)   # a stale record: fallback
