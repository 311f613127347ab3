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


def nearest_boundary(t: float, boundaries) -> str:
    """Describe the boundary nearest to time ``t`` (``boundaries``: DataFrame of one movie, ``time_s[, level]``)."""
    if boundaries is None or len(boundaries) == 0:
        return "no boundaries known"
    times = boundaries.time_s.to_numpy()
    i = int(np.argmin(np.abs(times - t)))
    level = f" {boundaries.level.iloc[i]}" if "level" in boundaries else ""
    return f"nearest{level} boundary {times[i]:.2f} s ({times[i] - t:+.2f} s)"


def frame_scrubber(frameset, boundaries=None, movie: str | None = None, scale: int = 4, full_res: bool = True):
    """A frame scrubber over a :class:`~vaelib.video.FrameSet`.

    A slider over the frame index of one movie (a dropdown picks the movie) shows the stored small
    frame, enlarged ``scale`` times, beside the full-resolution frame decoded from the source video,
    with the time and the nearest boundary (``boundaries``: DataFrame ``movie, time_s[, level]``).
    """
    import ipywidgets as W

    from .video import read_frame_at

    movies = frameset.movies
    movie = movie or movies[0]
    pick = W.Dropdown(options=movies, value=movie, description="movie")
    slider = W.IntSlider(0, 0, 1, description="frame", continuous_update=True,
                         layout=W.Layout(width="520px"))
    play = W.Play(interval=100, step=1)
    W.jslink((play, "value"), (slider, "value"))
    small = W.Image(format="png")
    full = W.Image(format="png", layout=W.Layout(max_width="360px"))
    info = W.HTML()

    def set_movie(*_):
        rows = frameset.movie_rows(pick.value)
        slider.max = play.max = rows.stop - rows.start - 1
        slider.value = 0
        show()

    def show(*_):
        rows = frameset.movie_rows(pick.value)
        i = rows.start + slider.value
        t = float(frameset.index.time_s.iloc[i])
        small.value = png_bytes(np.asarray(frameset.frames[i]), scale)
        if full_res:
            try:
                full.value = png_bytes(read_frame_at(frameset.source_path(pick.value),
                                                     int(frameset.index.frame.iloc[i])))
            except (OSError, ValueError):
                full.value = b""
        b = None if boundaries is None else boundaries[boundaries.movie == pick.value]
        info.value = f"<b>{pick.value}</b> &nbsp; t = {t:.2f} s (source frame {int(frameset.index.frame.iloc[i])})" \
                     f" &nbsp;·&nbsp; {nearest_boundary(t, b)}"

    pick.observe(set_movie, names="value")
    slider.observe(show, names="value")
    set_movie()
    pictures = [W.VBox([W.HTML(f"stored {frameset.size}x{frameset.size}"), small])]
    if full_res:
        pictures.append(W.VBox([W.HTML("source frame"), full]))
    return W.VBox([W.HBox([pick, play, slider]), info, W.HBox(pictures)])
