"""A seeded generator of synthetic "everyday activity" movies with known event structure.

Each movie shows an actor (a simple figure) in a room with several work stations. The movie is a
sequence of **coarse events** (activities such as *making coffee* or *watering plants*, each at its
own station with its own objects) made of **fine events** (reach, grasp, carry, place, wipe, and
*walk* to the next station). At a coarse boundary the actor walks and the camera pans to the next
station, so no coarse boundary is a hard cut. To keep a pixel-difference detector from being
trivially perfect the rendering adds hand-held camera jitter, slow lighting drift, brief lighting
flickers at moments that are *not* boundaries, and sensor noise.

Beside the videos (``videos/*.mp4``, written through OpenCV so the book decodes them like real
movies) the generator writes

- ``events.csv``: every fine event (movie, coarse index, activity, fine index, action, start, end);
- ``boundaries.csv``: the ground-truth boundaries (``movie, level, time_s``; level is ``coarse`` or
  ``fine``; every coarse boundary is also a fine one);
- ``observers.dat``: **simulated** observers' button presses in the exact format of the Zacks lab
  file (tab-separated ``SubjNum Condition Movie MS``). Their condition is ``simulated`` and their ids
  ``sim01``, ... so they can never be mistaken for real data;
- ``README.txt`` saying all of the above, and ``config.json`` with the settings.

Everything is determined by the seed: the same settings give the same frames and the same presses.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from tqdm.auto import tqdm

from .config import JSONConfig
from .paths import atomic_dir, resolve
from .video_io import write_video

GENERATOR_VERSION = 1

# Activities: a wall colour (RGB) and the colours of the objects used in them.
ACTIVITIES: dict[str, dict] = {
    "making coffee": {"wall": (196, 160, 120), "objects": [(120, 60, 20), (240, 240, 235), (60, 60, 70)]},
    "washing dishes": {"wall": (150, 190, 210), "objects": [(250, 250, 250), (40, 120, 200), (230, 200, 60)]},
    "folding laundry": {"wall": (200, 180, 210), "objects": [(220, 60, 60), (60, 160, 90), (240, 220, 120)]},
    "watering plants": {"wall": (170, 205, 160), "objects": [(40, 140, 40), (190, 90, 40), (80, 120, 220)]},
    "reading mail": {"wall": (215, 210, 170), "objects": [(245, 245, 245), (200, 170, 110), (120, 40, 120)]},
    "setting the table": {"wall": (210, 170, 160), "objects": [(240, 240, 240), (180, 180, 190), (200, 120, 40)]},
}

FINE_ACTIONS = ("walk", "reach", "grasp", "carry", "place", "wipe")
DURATIONS_S = {"walk": (2.0, 3.0), "reach": (1.0, 2.0), "grasp": (0.8, 1.4), "carry": (1.5, 2.8),
               "place": (0.8, 1.4), "wipe": (2.0, 3.5)}


@dataclass
class SyntheticConfig(JSONConfig):
    """Settings of the generator. ``seconds`` is the length of each movie."""
    n_movies: int = 3
    seconds: float = 60.0
    fps: float = 30.0
    height: int = 240
    width: int = 320
    seed: int = 0
    n_observers: int = 16
    activity_seconds: tuple[float, float] = (14.0, 24.0)
    noise_sd: float = 4.0
    jitter_px: float = 2.0
    lighting_drift: float = 0.08
    flickers_per_minute: float = 3.0

    def __post_init__(self) -> None:
        self.activity_seconds = tuple(self.activity_seconds)
        if self.n_movies < 1 or self.seconds < 5 or self.fps <= 0:
            raise ValueError(f"need n_movies >= 1, seconds >= 5 and fps > 0 (got {self.n_movies}, "
                             f"{self.seconds}, {self.fps})")
        if self.height < 48 or self.width < 64:
            raise ValueError(f"frames must be at least 64x48 (got {self.width}x{self.height})")


@dataclass
class SyntheticDataset:
    """Paths of a generated dataset."""
    root: Path
    videos: list[Path]
    events_csv: Path
    boundaries_csv: Path
    observers_dat: Path
    config: SyntheticConfig = field(repr=False)

    def events(self) -> pd.DataFrame:
        return pd.read_csv(self.events_csv, dtype={"movie": str})

    def boundaries(self) -> pd.DataFrame:
        return pd.read_csv(self.boundaries_csv, dtype={"movie": str})


# ----------------------------------------------------------------------------------------- planning

@dataclass
class Station:
    activity: str
    x0: int                      # left edge of the station in panorama coordinates
    objects: list[dict]          # each: colour, shape, home (x, y), away (x, y)


def _stations(cfg: SyntheticConfig, rng: np.random.Generator, activities: list[str]) -> list[Station]:
    w, h = cfg.width, cfg.height
    table_y = int(h * 0.62)
    out = []
    for k, act in enumerate(activities):
        objs = []
        for j, colour in enumerate(ACTIVITIES[act]["objects"]):
            home = (int(w * (0.18 + 0.2 * j) + rng.integers(-8, 9)), table_y - int(h * 0.04))
            away = (int(w * (0.78 - 0.12 * j) + rng.integers(-8, 9)), table_y - int(h * 0.04))
            objs.append({"colour": colour, "shape": ["circle", "box", "tri"][j % 3], "home": home, "away": away})
        out.append(Station(act, k * w, objs))
    return out


def plan_movie(cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[list[Station], list[dict]]:
    """Choose a movie's activities and its fine events; return the stations and the event list.

    Each event is a dict with ``coarse``, ``activity``, ``action``, ``start``, ``end``, the station,
    the object it handles (if any) and the hand's start and end positions (station coordinates).
    """
    names = list(ACTIVITIES)
    lo, hi = cfg.activity_seconds
    durations = []
    while sum(durations) < cfg.seconds:
        durations.append(float(rng.uniform(lo, hi)))
    if cfg.seconds - sum(durations[:-1]) < lo / 2 and len(durations) > 1:
        durations.pop()                        # merge a stub into the previous activity
    durations[-1] = cfg.seconds - sum(durations[:-1])
    order = [str(a) for a in rng.permutation(names)]
    while len(order) < len(durations):
        order += [a for a in rng.permutation(names) if a != order[-1]]
    activities = order[:len(durations)]
    stations = _stations(cfg, rng, activities)

    w, h = cfg.width, cfg.height
    rest = (int(w * 0.5), int(h * 0.55))
    events: list[dict] = []
    t = 0.0
    hand = rest
    for c, (station, dur) in enumerate(zip(stations, durations)):
        end_c = t + dur
        if c > 0:
            d = float(rng.uniform(*DURATIONS_S["walk"]))
            events.append(dict(coarse=c, station=c, action="walk", start=t, end=t + d, obj=None,
                               hand0=hand, hand1=rest))
            t, hand = t + d, rest
        k = 0
        while t < end_c - 0.5:
            j = int(rng.integers(len(station.objects)))
            obj = station.objects[j]
            at_home = obj.get("_at_home", True)
            src, dst = (obj["home"], obj["away"]) if at_home else (obj["away"], obj["home"])
            plan = [("reach", hand, src), ("grasp", src, src), ("carry", src, dst), ("place", dst, rest)]
            if k > 0 and rng.random() < 0.35:
                wipe_at = (int(w * rng.uniform(0.3, 0.7)), int(h * 0.58))
                plan = [("wipe", hand, wipe_at)] + [("reach", wipe_at, src)] + plan[1:]
            for action, h0, h1 in plan:
                if t >= end_c - 0.3:
                    break
                d = float(rng.uniform(*DURATIONS_S[action]))
                events.append(dict(coarse=c, station=c, action=action, start=t, end=min(t + d, end_c), obj=j,
                                   hand0=h0, hand1=h1))
                t, hand = min(t + d, end_c), h1
            obj["_at_home"] = not at_home
            k += 1
        # the activity ends where its events end: adjust the last event to the coarse end
        events[-1]["end"] = end_c
        t = end_c
    for e in events:
        e["activity"] = stations[e["station"]].activity
    for obj in (o for s in stations for o in s.objects):
        obj.pop("_at_home", None)
    return stations, events


# ---------------------------------------------------------------------------------------- rendering

def _panorama(cfg: SyntheticConfig, stations: list[Station], rng: np.random.Generator, margin: int) -> np.ndarray:
    """The room: one wall section per station, with texture, a window or picture, a table and a floor."""
    w, h = cfg.width, cfg.height
    pano = np.zeros((h + 2 * margin, w * len(stations) + 2 * margin, 3), np.uint8)
    tex = rng.normal(0, 1, (pano.shape[0] // 8 + 1, pano.shape[1] // 8 + 1)).astype(np.float32)
    tex = cv2.resize(cv2.GaussianBlur(tex, (0, 0), 1.5), (pano.shape[1], pano.shape[0]))
    for k, st in enumerate(stations):
        x0 = margin + k * w - (margin if k == 0 else 0)
        x1 = margin + (k + 1) * w + (margin if k == len(stations) - 1 else 0)
        pano[:, x0:x1] = ACTIVITIES[st.activity]["wall"]
    pano = np.clip(pano.astype(np.float32) + 10 * tex[..., None], 0, 255).astype(np.uint8)
    floor_y = margin + int(h * 0.8)
    pano[floor_y:] = (pano[floor_y:] * 0.55).astype(np.uint8)
    for k, st in enumerate(stations):
        ox = margin + k * w
        wall = np.array(ACTIVITIES[st.activity]["wall"], float)
        deco = tuple(int(v) for v in np.clip(255 - wall * 0.6 + rng.integers(-30, 30, 3), 0, 255))
        dx = int(rng.integers(int(w * 0.1), int(w * 0.55)))
        cv2.rectangle(pano, (ox + dx, margin + int(h * 0.1)), (ox + dx + int(w * 0.3), margin + int(h * 0.35)),
                      deco, -1)
        cv2.rectangle(pano, (ox + dx, margin + int(h * 0.1)), (ox + dx + int(w * 0.3), margin + int(h * 0.35)),
                      (60, 50, 40), 2)
        table = tuple(int(v) for v in (wall * 0.45))
        cv2.rectangle(pano, (ox + int(w * 0.08), margin + int(h * 0.62)), (ox + int(w * 0.92), margin + int(h * 0.68)),
                      table, -1)
        cv2.rectangle(pano, (ox + int(w * 0.12), margin + int(h * 0.68)), (ox + int(w * 0.15), margin + int(h * 0.8)),
                      table, -1)
        cv2.rectangle(pano, (ox + int(w * 0.85), margin + int(h * 0.68)), (ox + int(w * 0.88), margin + int(h * 0.8)),
                      table, -1)
    return pano


def _ease(u: float) -> float:
    return 0.5 - 0.5 * np.cos(np.pi * min(max(u, 0.0), 1.0))


def hand_position(event: dict, t: float) -> tuple[float, float]:
    """Where the hand is at time ``t`` during ``event`` (station coordinates, pixels)."""
    u = (t - event["start"]) / max(event["end"] - event["start"], 1e-6)
    (x0, y0), (x1, y1) = event["hand0"], event["hand1"]
    e = _ease(u)
    x, y = x0 + (x1 - x0) * e, y0 + (y1 - y0) * e
    if event["action"] == "carry":
        y -= 30 * np.sin(np.pi * min(max(u, 0), 1)) ** 2       # lift while carrying, smoothly
    elif event["action"] == "grasp":
        y -= 4 * np.sin(2 * np.pi * 2 * u)                     # a small adjusting movement
    elif event["action"] == "wipe":
        x = x1 + 25 * np.sin(2 * np.pi * 1.5 * (t - event["start"])) * np.sin(np.pi * min(max(u, 0), 1))
        y = y1
    return float(x), float(y)


def _draw_object(img: np.ndarray, obj: dict, x: float, y: float, scale: float) -> None:
    c = tuple(int(v) for v in obj["colour"])
    r = int(9 * scale)
    p = (int(x), int(y))
    if obj["shape"] == "circle":
        cv2.circle(img, p, r, c, -1, cv2.LINE_AA)
    elif obj["shape"] == "box":
        cv2.rectangle(img, (p[0] - r, p[1] - r), (p[0] + r, p[1] + r), c, -1)
    else:
        pts = np.array([[p[0], p[1] - r], [p[0] - r, p[1] + r], [p[0] + r, p[1] + r]], np.int32)
        cv2.fillPoly(img, [pts], c, cv2.LINE_AA)
    cv2.circle(img, p, 1, (30, 30, 30), -1) if obj["shape"] == "circle" else None


def render_movie(cfg: SyntheticConfig, stations: list[Station], events: list[dict],
                 rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield the movie's RGB frames (height, width, 3) uint8, one per 1/fps seconds."""
    w, h = cfg.width, cfg.height
    s = h / 240.0
    margin = int(np.ceil(4 * cfg.jitter_px)) + 2
    pano = _panorama(cfg, stations, rng, margin)
    n = int(round(cfg.seconds * cfg.fps))
    # camera jitter: a smoothed random walk; lighting: slow drift plus brief flickers away from boundaries
    jit = gaussian_filter1d(np.cumsum(rng.normal(0, 1, (n, 2)), axis=0), 4.0, axis=0)
    jit = jit - gaussian_filter1d(jit, 30.0, axis=0, mode="nearest")   # wander around, do not drift away
    jit = np.clip(jit / (jit.std() + 1e-6) * cfg.jitter_px, -3 * cfg.jitter_px, 3 * cfg.jitter_px)
    times = np.arange(n) / cfg.fps
    gain = 1 + cfg.lighting_drift * np.sin(2 * np.pi * times / 37.0 + rng.uniform(0, 2 * np.pi))
    starts = np.array([e["start"] for e in events[1:]])
    n_flick = rng.poisson(cfg.flickers_per_minute * cfg.seconds / 60)
    for t0 in rng.uniform(0, cfg.seconds, n_flick):
        if starts.size and np.min(np.abs(starts - t0)) < 1.0:
            continue                                   # flickers are distractors: keep them off boundaries
        gain[(times >= t0) & (times < t0 + 0.3)] *= 0.82
    noise_bank = rng.normal(0, cfg.noise_sd, (8, h, w, 3))
    pos_noise = np.clip(noise_bank, 0, 255).astype(np.uint8)
    neg_noise = np.clip(-noise_bank, 0, 255).astype(np.uint8)
    obj_pos = {(k, j): o["home"] for k, st in enumerate(stations) for j, o in enumerate(st.objects)}

    ev_i = 0
    for i in range(n):
        t = times[i]
        while ev_i < len(events) - 1 and t >= events[ev_i]["end"]:
            done = events[ev_i]
            if done["action"] == "carry":
                obj_pos[(done["station"], done["obj"])] = done["hand1"]
            ev_i += 1
        ev = events[ev_i]
        if ev["action"] == "walk":
            u = _ease((t - ev["start"]) / (ev["end"] - ev["start"]))
            cam = (ev["station"] - 1 + u) * w
        else:
            cam = ev["station"] * w
        cx = int(round(margin + cam + jit[i, 0]))
        cy = int(round(margin + jit[i, 1]))
        frame = pano[cy:cy + h, cx:cx + w].copy()
        # objects of the visible stations
        for k in (int(cam // w), int(cam // w) + 1):
            if k >= len(stations):
                continue
            for j, obj in enumerate(stations[k].objects):
                held = ev["station"] == k and ev["obj"] == j and ev["action"] in ("grasp", "carry")
                x, y = hand_position(ev, t) if held else obj_pos[(k, j)]
                _draw_object(frame, obj, k * w + x - cam, y + 6 * s if held else y, s)
        # the actor: body, head, arm, hand
        hx, hy = hand_position(ev, t)
        if ev["action"] == "walk":
            body_x = w * 0.5 + 10 * np.sin(2 * np.pi * 2 * (t - ev["start"]))
        else:
            body_x = w * 0.5 + 0.25 * (hx - w * 0.5)
        sway = 2 * np.sin(2 * np.pi * t / 3.1)
        bx, by = int(body_x + sway), int(h * 0.42)
        cv2.ellipse(frame, (bx, by), (int(22 * s), int(48 * s)), 0, 0, 360, (70, 80, 140), -1, cv2.LINE_AA)
        cv2.circle(frame, (bx, int(by - 62 * s)), int(15 * s), (225, 190, 160), -1, cv2.LINE_AA)
        cv2.rectangle(frame, (bx - int(16 * s), int(by + 40 * s)), (bx + int(16 * s), int(h * 0.92)),
                      (50, 50, 60), -1)
        shoulder = (bx + int(10 * s), int(by - 30 * s))
        cv2.line(frame, shoulder, (int(hx), int(hy)), (70, 80, 140), max(2, int(7 * s)), cv2.LINE_AA)
        cv2.circle(frame, (int(hx), int(hy)), int(6 * s), (225, 190, 160), -1, cv2.LINE_AA)
        frame = cv2.convertScaleAbs(frame, alpha=float(gain[i]))
        k = int(rng.integers(8))
        frame = cv2.subtract(cv2.add(frame, pos_noise[k]), neg_noise[k])
        yield frame


# ---------------------------------------------------------------------------------------- observers

def simulate_observers(boundaries: pd.DataFrame, durations: dict[str, float], n_observers: int,
                       rng: np.random.Generator) -> pd.DataFrame:
    """Simulated button presses: each observer catches a coarse boundary with high probability and a
    fine one with a personal, lower probability, presses after a personal lag with jitter, and
    sometimes presses where there is no boundary. Returns ``SubjNum, Condition, Movie, MS`` rows."""
    rows = []
    for o in range(n_observers):
        subj = f"sim{o + 1:02d}"
        p_coarse = rng.uniform(0.7, 0.95)
        p_fine = rng.uniform(0.15, 0.6)
        lag = rng.normal(0.7, 0.2)
        false_per_min = rng.uniform(0.3, 1.5)
        for movie, dur in durations.items():
            b = boundaries[boundaries.movie == movie]
            coarse = set(np.round(b[b.level == "coarse"].time_s, 6))
            presses = []
            for t in sorted(set(np.round(b.time_s, 6))):
                p = p_coarse if t in coarse else p_fine
                if rng.random() < p:
                    presses.append(t + lag + rng.normal(0, 0.4))
            presses += list(rng.uniform(0, dur, rng.poisson(false_per_min * dur / 60)))
            presses = np.sort(np.clip(presses, 0.05, dur - 0.05))
            for t in presses:
                rows.append((subj, "simulated", movie, int(round(t * 1000))))
    df = pd.DataFrame(rows, columns=["SubjNum", "Condition", "Movie", "MS"])
    return df.sort_values(["Movie", "SubjNum", "MS"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------ dataset

_README = """SYNTHETIC DATA made by vaelib.synthetic (generator version {version}), seed {seed}.

videos/*.mp4     rendered activity movies ({width}x{height}, {fps:g} fps, {seconds:g} s each)
events.csv       every fine event: movie, coarse index, activity, fine index, action, start_s, end_s
boundaries.csv   ground-truth event boundaries: movie, level (coarse|fine), time_s
                 (every coarse boundary is also a fine one)
observers.dat    SIMULATED observers' button presses, NOT human data. Same format as the Zacks lab
                 file (tab-separated SubjNum Condition Movie MS); Condition is "simulated" and the
                 ids are sim01, sim02, ...
config.json      the generator settings
"""

def _matches(root: Path, cfg: SyntheticConfig) -> bool:
    try:
        old = json.loads((root / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return old == {"generator_version": GENERATOR_VERSION, **cfg.to_dict()}


def make_synthetic_dataset(out_dir: str | os.PathLike, n_movies: int = 3, seconds: float = 60.0,
                           seed: int = 0, n_observers: int = 16, overwrite: bool = False,
                           progress: bool = True, **settings) -> SyntheticDataset:
    """Generate (or reuse, when ``out_dir`` holds one made with the same settings) a synthetic dataset.

    Further ``settings`` are fields of :class:`SyntheticConfig` (fps, height, width, noise_sd, ...).
    The dataset is built in a temporary folder and renamed into place when complete.
    """
    cfg = SyntheticConfig(n_movies=n_movies, seconds=seconds, seed=seed, n_observers=n_observers, **settings)
    root = resolve(out_dir)
    if not overwrite and _matches(root, cfg):
        return _dataset(root, cfg)
    with atomic_dir(root) as tmp:
        (tmp / "videos").mkdir()
        events_rows, bounds, durations = [], [], {}
        for m in tqdm(range(cfg.n_movies), desc="rendering synthetic movies", disable=not progress):
            movie = f"synth{m + 1:02d}"
            rng = np.random.default_rng([cfg.seed, m])
            stations, events = plan_movie(cfg, rng)
            write_video(tmp / "videos" / f"{movie}.mp4", render_movie(cfg, stations, events, rng), cfg.fps)
            durations[movie] = cfg.seconds
            for i, e in enumerate(events):
                events_rows.append((movie, e["coarse"], e["activity"], i, e["action"], e["start"], e["end"]))
                if i > 0:
                    bounds.append((movie, "fine", e["start"]))
                    if e["coarse"] != events[i - 1]["coarse"]:
                        bounds.append((movie, "coarse", e["start"]))
        pd.DataFrame(events_rows, columns=["movie", "coarse", "activity", "fine", "action", "start_s", "end_s"]
                     ).to_csv(tmp / "events.csv", index=False, float_format="%.4f")
        bdf = pd.DataFrame(bounds, columns=["movie", "level", "time_s"])
        bdf.to_csv(tmp / "boundaries.csv", index=False, float_format="%.4f")
        presses = simulate_observers(bdf, durations, cfg.n_observers, np.random.default_rng([cfg.seed, 10_000]))
        presses.to_csv(tmp / "observers.dat", sep="\t", index=False)
        (tmp / "README.txt").write_text(_README.format(version=GENERATOR_VERSION, **asdict(cfg)))
        (tmp / "config.json").write_text(json.dumps({"generator_version": GENERATOR_VERSION, **cfg.to_dict()},
                                                    indent=2))
    return _dataset(root, cfg)


def _dataset(root: Path, cfg: SyntheticConfig) -> SyntheticDataset:
    return SyntheticDataset(root, sorted((root / "videos").glob("*.mp4")), root / "events.csv",
                            root / "boundaries.csv", root / "observers.dat", cfg)
