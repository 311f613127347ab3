"""The synthetic generator: deterministic for a seed, and its boundaries are where it rendered them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL

from vaelib.synthetic import ACTIVITIES, SyntheticConfig, hand_position, make_synthetic_dataset, plan_movie
from vaelib.video_io import read_video


def test_same_seed_same_data_other_seed_other_data(small_dataset, tmp_path):
    again = make_synthetic_dataset(tmp_path / "again", progress=False, **SMALL)
    for a, b in zip(small_dataset.videos, again.videos):
        fa, fb = np.stack(list(read_video(a))), np.stack(list(read_video(b)))
        np.testing.assert_array_equal(fa, fb)
    pd.testing.assert_frame_equal(small_dataset.boundaries(), again.boundaries())
    assert small_dataset.observers_dat.read_bytes() == again.observers_dat.read_bytes()
    other = make_synthetic_dataset(tmp_path / "other", progress=False, **{**SMALL, "seed": 8})
    assert not small_dataset.boundaries().equals(other.boundaries())


def test_boundaries_are_the_event_starts(small_dataset):
    ev, b = small_dataset.events(), small_dataset.boundaries()
    for movie, e in ev.groupby("movie"):
        fine = b[(b.movie == movie) & (b.level == "fine")].time_s.to_numpy()
        coarse = b[(b.movie == movie) & (b.level == "coarse")].time_s.to_numpy()
        np.testing.assert_allclose(fine, e.start_s.to_numpy()[1:], atol=1e-3)
        starts_of_activities = e.groupby("coarse").start_s.min().to_numpy()[1:]
        np.testing.assert_allclose(coarse, starts_of_activities, atol=1e-3)
        assert len(coarse) >= 1 and set(np.round(coarse, 3)) <= set(np.round(fine, 3))
        np.testing.assert_allclose(e.end_s.to_numpy()[:-1], e.start_s.to_numpy()[1:], atol=1e-3)
        assert e.end_s.max() == pytest.approx(SMALL["seconds"], abs=1e-3)


def _chroma(rgb):
    rgb = np.asarray(rgb, float)
    return rgb / rgb.sum(-1, keepdims=True)


def test_rendered_wall_is_the_activity_of_the_event(small_dataset):
    """Mid-way through every non-walking stretch, the wall seen in the decoded video is that activity's."""
    ev = small_dataset.events()
    walls = {a: _chroma(v["wall"]) for a, v in ACTIVITIES.items()}
    for video in small_dataset.videos:
        frames = np.stack(list(read_video(video)))
        e = ev[(ev.movie == video.stem) & (ev.action != "walk")]
        for _, act in e.groupby("coarse"):
            t = 0.5 * (act.start_s.min() + act.end_s.max())
            top = frames[int(t * 30), 2:18, 40:280].reshape(-1, 3).mean(0)   # a strip of bare wall
            nearest = min(walls, key=lambda a: np.abs(walls[a] - _chroma(top)).sum())
            assert nearest == act.activity.iloc[0], (video.name, t, top)


def test_hand_moves_continuously_and_rests_at_fine_boundaries():
    cfg = SyntheticConfig(seconds=30, activity_seconds=(8, 12))
    _, events = plan_movie(cfg, np.random.default_rng(3))
    for a, b in zip(events[:-1], events[1:]):
        if b["action"] in ("walk", "wipe") or a["action"] == "wipe":
            continue
        t = b["start"]
        np.testing.assert_allclose(hand_position(a, t), hand_position(b, t), atol=1.0)
        dt = 1 / 30
        speed = np.hypot(*np.subtract(hand_position(b, t + dt), hand_position(b, t))) / dt
        mid = 0.5 * (b["start"] + b["end"])
        mid_speed = np.hypot(*np.subtract(hand_position(b, mid + dt), hand_position(b, mid))) / dt
        if np.hypot(*np.subtract(b["hand1"], b["hand0"])) > 20:
            assert speed < 0.25 * mid_speed


def test_simulated_observers_file(small_dataset):
    text = small_dataset.observers_dat.read_text().splitlines()
    assert text[0] == "SubjNum\tCondition\tMovie\tMS"
    df = pd.read_csv(small_dataset.observers_dat, sep="\t")
    assert set(df.Condition) == {"simulated"} and df.SubjNum.str.startswith("sim").all()
    assert df.SubjNum.nunique() == SMALL["n_observers"] and set(df.Movie) == {"synth01", "synth02"}
    assert df.MS.between(0, SMALL["seconds"] * 1000).all()
    # presses cluster just after coarse boundaries: most observers press within 2.5 s of each one
    b = small_dataset.boundaries()
    for _, cb in b[b.level == "coarse"].iterrows():
        d = df[df.Movie == cb.movie]
        hit = d[(d.MS / 1000 > cb.time_s - 0.5) & (d.MS / 1000 < cb.time_s + 2.5)].SubjNum.nunique()
        assert hit >= SMALL["n_observers"] // 2
    assert "SIMULATED" in (small_dataset.root / "README.txt").read_text()


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="seconds"):
        make_synthetic_dataset(tmp_path / "x", seconds=1)
