"""Interactive views shared by chapters: frame scrubbers and latent sliders (ipywidgets).

Every view returns an ipywidgets widget whose pictures are ``ipywidgets.Image`` (PNG), so a
headless papermill run simply stores the widget, and a browser test can compare its pixels.
"""
from __future__ import annotations

import cv2
import numpy as np


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    """Encode an RGB uint8 image as PNG, enlarged ``scale`` times with nearest-neighbour pixels."""
    image = np.ascontiguousarray(image)
    if scale != 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return buf.tobytes()
