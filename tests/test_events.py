"""Event models on planted streams: switches found where they were planted, none in a stationary stream."""
from __future__ import annotations

import numpy as np
import pytest

from vaelib import events as ev


def _switching(n_seg=16, d=10, n_dyn=5, seed=0, noise=0.1):
    """Switching linear dynamics: each segment follows one of ``n_dyn`` stable dynamics (revisited) towards
    its own fixed point; returns the series and the true switch frames."""
    rng = np.random.default_rng(seed)
    dyn = [(0.9 * np.linalg.qr(rng.standard_normal((d, d)))[0], 3 * rng.standard_normal(d)) for _ in range(n_dyn)]
    z, switches, k = [rng.standard_normal(d)], [], 0
    for s in range(n_seg):
        if s:
            k = (k + rng.integers(1, n_dyn)) % n_dyn
            switches.append(len(z) - 1)
        a, c = dyn[k]
        for _ in range(rng.integers(80, 160)):
            z.append(c + a @ (z[-1] - c) + noise * rng.standard_normal(d))
    return np.asarray(z[1:]), np.asarray(switches)


def _mean_shifts(n_seg=16, d=10, seed=0):
    """Piecewise-constant means in unit noise."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(80, 160, n_seg)
    z = np.concatenate([rng.standard_normal(d) + rng.standard_normal((n, d)) for n in lengths])
    return z, np.cumsum(lengths)[:-1]


def _recovered(found, truth, tol=5):
    return sum(len(found) and np.min(np.abs(found - b)) <= tol for b in truth)


@pytest.mark.parametrize("seed", [0, 1])
def test_sem_finds_planted_switches_and_reuses_events(seed):
    z, truth = _switching(seed=seed)
    seg = ev.sem_segment(z)
    assert _recovered(seg.boundaries, truth) == len(truth)
    assert len(seg.boundaries) <= 1.3 * len(truth)
    assert seg.n_events <= 7                      # 5 dynamics, revisited: old events are recognized
    assert seg.labels.shape == (len(z),) and seg.surprise.shape == (len(z),)
    # surprise under the running event peaks at the switches
    assert np.median(seg.surprise[truth]) > np.percentile(seg.surprise, 95)
    assert (seg.marks()[seg.boundaries] == 1).all() and seg.marks().sum() == len(seg.boundaries)


def test_bocpd_finds_planted_mean_shifts():
    z, truth = _mean_shifts()
    seg = ev.bocpd_segment(z)
    assert _recovered(seg.boundaries, truth) == len(truth)
    assert len(seg.boundaries) <= 1.3 * len(truth)


def test_stationary_streams_give_few_boundaries():
    rng = np.random.default_rng(3)
    a = 0.9 * np.linalg.qr(rng.standard_normal((10, 10)))[0]
    z = [rng.standard_normal(10)]
    for _ in range(3000):
        z.append(a @ z[-1] + 0.1 * rng.standard_normal(10))
    assert len(ev.sem_segment(np.asarray(z)).boundaries) <= 2
    assert len(ev.bocpd_segment(rng.standard_normal((3000, 10))).boundaries) <= 2


def test_event_models_reject_bad_series():
    with pytest.raises(ValueError, match="2-D"):
        ev.sem_segment(np.zeros(10))
    z = np.random.default_rng(0).standard_normal((50, 3))
    z[7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ev.bocpd_segment(z)
    with pytest.raises(ValueError, match="hazard"):
        ev.bocpd_segment(z[:5], hazard=2.0)


def test_segment_frames_maps_blocks_back_to_frames():
    z, truth = _switching(n_seg=6, seed=2)
    z = np.repeat(z, 3, axis=0)                   # 3 frames per sample: 12 fps seen at 4 Hz
    seg = ev.segment_frames(z, fps=12.0, model="sem", rate_hz=4.0)
    assert seg.labels.shape == (len(z),) and seg.surprise.shape == (len(z),)
    assert (seg.boundaries % 3 == 0).all()
    assert _recovered(seg.boundaries, 3 * truth, tol=15) == len(truth)
    with pytest.raises(ValueError, match="unknown event model"):
        ev.segment_frames(z, 12.0, model="hmm")
    short = ev.segment_frames(z[:3], fps=30.0, model="bocpd")       # 3 frames at 30 fps: still two samples
    assert short.labels.shape == (3,) and np.isfinite(short.surprise).all()
    with pytest.raises(ValueError, match=">= 2 frames"):
        ev.segment_frames(z[:1], fps=30.0)


def test_local_level_filter_is_causal_and_tracks_the_level():
    rng = np.random.default_rng(4)
    level = np.cumsum(0.05 * rng.standard_normal((4000, 3)), axis=0)
    z = level + 0.5 * rng.standard_normal(level.shape)
    m = ev.local_level_filter(z)
    assert np.mean((m - level) ** 2) < 0.25 * np.mean((z - level) ** 2)
    z2 = z.copy()
    z2[2000:] += 10.0                             # at a given gain the future does not change the past
    np.testing.assert_allclose(ev.local_level_filter(z2, gains=[0.1])[:2000],
                               ev.local_level_filter(z, gains=[0.1])[:2000])
    # white noise around a constant: heavy smoothing; a pure random walk: almost none
    flat = ev.local_level_filter(rng.standard_normal((4000, 2)))
    assert flat[1000:].std() < 0.2
    walk = np.cumsum(rng.standard_normal((4000, 2)), axis=0)
    assert np.abs(ev.local_level_filter(walk) - walk).max() < 1e-2 * walk.std()


def test_memory_filter_remembers_for_its_time_constant():
    step = np.r_[np.zeros(100), np.ones(400)][:, None]
    m = ev.memory_filter(step, fps=10.0, memory_s=2.0)
    assert m[99, 0] == 0 and 1 - np.exp(-1) - 0.02 < m[119, 0] < 1 - np.exp(-1) + 0.02   # 63% after 2 s
    np.testing.assert_allclose(ev.memory_filter(step, 10.0, None), step, atol=1e-6)   # no noise: no memory
    with pytest.raises(ValueError, match="memory_s"):
        ev.memory_filter(step, 10.0, 0.0)


def test_merge_short_events_keeps_sustained_changes_only():
    merged = ev.merge_short_events(np.array(list("aaaabcbcccccddbdddd")), 3)
    assert "".join(merged) == "aaaa" + "cccccccc" + "ddddddd"       # the flicker belongs to the next event
    assert "".join(ev.merge_short_events(np.array(list("aaaabc")), 3)) == "aaaaaa"     # a short end
    assert "".join(ev.merge_short_events(np.array(list("abab")), 3)) == "abab"         # nothing long: as is


def test_sem_and_bocpd_are_online():
    """Given the scaling (standardization and SEM's default noise scale use the whole series), what a model
    says about step t does not depend on anything after t (BOCPD's labels may move a recent boundary, by
    design, so only its surprise is checked)."""
    z, _ = _switching(n_seg=6, seed=3)
    later = z.copy()
    later[300:] += np.random.default_rng(0).standard_normal(later[300:].shape)
    a, b = (ev.sem_segment(x, standardize=False, noise_scale=0.05) for x in (z, later))
    np.testing.assert_array_equal(a.labels[:300], b.labels[:300])
    np.testing.assert_allclose(a.surprise[:300], b.surprise[:300])
    np.testing.assert_allclose(ev.bocpd_segment(z, standardize=False).surprise[:300],
                               ev.bocpd_segment(later, standardize=False).surprise[:300])
