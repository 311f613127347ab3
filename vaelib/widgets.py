"""Interactive views shared by chapters: frame scrubbers and latent sliders (ipywidgets).

Every view returns an ipywidgets widget whose pictures are ``ipywidgets.Image`` (PNG), so a
headless papermill run simply stores the widget, and a browser test can compare its pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

from .metrics import psnr
from .mmdvae import decode
from .plots import enlarge, image_grid
from .stats import principal_axes
from .video_io import read_frame_at


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    """Encode an RGB uint8 image as PNG, enlarged ``scale`` times with nearest-neighbour pixels."""
    image = np.ascontiguousarray(enlarge(image, scale))
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
    """A frame scrubber over a :class:`~vaelib.framestore.FrameSet`.

    A slider over the frame index of one movie (a dropdown picks the movie) shows the stored small
    frame, enlarged ``scale`` times, beside the full-resolution frame decoded from the source video,
    with the time and the nearest boundary (``boundaries``: DataFrame ``movie, time_s[, level]``).
    """
    import ipywidgets as W


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
                full.value = png_bytes(read_frame_at(frameset.source_path(pick.value), t))
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


# ------------------------------------------------------------------ chapter 3: event-boundary scrubber

def _figure_rgb(fig) -> np.ndarray:
    """Render a matplotlib figure to an RGB uint8 array (Agg canvas, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class EventScrubberPictures:
    """The pictures of the chapter-3 scrubber for one movie, at any frame.

    The trajectory and signal plots are drawn once with matplotlib; each frame only stamps the
    cursor (a red dot on the trajectory, a red line across the signals) onto a copy, so moving the
    slider is cheap. All arrays have one row per frame of the movie. ``labels`` (name -> event label per
    frame, e.g. an event model's) add rows drawn as colour bands, one colour per event.
    """
    def __init__(self, frames: np.ndarray, reconstructions: np.ndarray, trajectory: np.ndarray,
                 times: np.ndarray, signals: dict[str, np.ndarray], boundaries: np.ndarray | None = None,
                 frequency: tuple[np.ndarray, np.ndarray] | None = None, events: np.ndarray | None = None,
                 labels: dict[str, np.ndarray] | None = None, scale: int = 3) -> None:
        import matplotlib.pyplot as plt

        n = len(frames)
        labels = labels or {}
        for name, a in [("reconstructions", reconstructions), ("trajectory", trajectory), ("times", times),
                        *signals.items(), *labels.items()]:
            if len(a) != n:
                raise ValueError(f"{name} has {len(a)} rows but there are {n} frames")
        self.frames, self.recon, self.traj = frames, reconstructions, np.asarray(trajectory, float)
        self.times, self.scale = np.asarray(times, float), scale
        px = frames.shape[1] * scale / 100  # plot height in inches at 100 dpi = the frame's height
        boundaries = np.zeros(0) if boundaries is None else np.asarray(boundaries, float)

        fig, ax = plt.subplots(figsize=(px, px), dpi=100)
        ax.plot(self.traj[:, 0], self.traj[:, 1], color="0.8", lw=0.6, zorder=1)
        ax.scatter(self.traj[:, 0], self.traj[:, 1], c=events if events is not None else self.times,
                   cmap="tab10" if events is not None else "viridis", s=3, zorder=2)
        bi = np.searchsorted(self.times, boundaries).clip(0, n - 1)
        ax.scatter(self.traj[bi, 0], self.traj[bi, 1], marker="x", color="k", s=30, zorder=3)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title("latent trajectory (PCA)", fontsize=8)
        fig.tight_layout(pad=0.3)
        self._traj_bg = _figure_rgb(fig)
        self._traj_px = self._to_pixels(ax, self.traj, self._traj_bg.shape[0])
        plt.close(fig)

        k = len(signals) + len(labels) + (frequency is not None)
        fig, axes = plt.subplots(k, 1, figsize=(max(4 * px, 6.0), max(px, 0.45 * k)), dpi=100, sharex=True,
                                 squeeze=False)
        axes = axes[:, 0]
        rows = (list(signals.items()) + [(name, ("labels", v)) for name, v in labels.items()]
                + ([("group frequency", None)] if frequency is not None else []))
        edges = np.r_[self.times, self.times[-1] + (self.times[-1] - self.times[-2] if n > 1 else 1.0)]
        for a, (name, v) in zip(axes, rows):
            if v is None:
                a.fill_between(frequency[0], frequency[1], step="mid", color="tab:orange", lw=0)
            elif isinstance(v, tuple):              # event labels: a colour band, one colour per event
                a.pcolormesh(edges, [0, 1], np.asarray(v[1], float)[None, :] % 20, cmap="tab20", vmin=0, vmax=20)
            else:
                a.plot(self.times, v, lw=0.7, color="tab:blue")
            for b in boundaries:
                a.axvline(b, color="k", lw=0.6, ls=":")
            a.set_yticks([])
            a.set_ylabel(name.replace("_", " "), rotation=0, ha="right", va="center", fontsize=7)
        axes[-1].set_xlabel("time (s)", fontsize=7)
        axes[-1].tick_params(labelsize=6)
        axes[0].set_xlim(self.times[0], self.times[-1])
        fig.tight_layout(pad=0.3, h_pad=0.1)
        self._sig_bg = _figure_rgb(fig)
        h = self._sig_bg.shape[0]
        x = self._to_pixels(axes[0], np.c_[self.times, np.zeros(n)], h)[:, 0]
        self._sig_x = x
        top = self._to_pixels(axes[0], np.c_[self.times[:1], [axes[0].get_ylim()[1]]], h)[0, 1]
        bot = self._to_pixels(axes[-1], np.c_[self.times[:1], [axes[-1].get_ylim()[0]]], h)[0, 1]
        self._sig_y = (int(top), int(bot))
        plt.close(fig)

    @staticmethod
    def _to_pixels(ax, xy: np.ndarray, height: int) -> np.ndarray:
        d = ax.transData.transform(np.asarray(xy, float))
        return np.c_[d[:, 0], height - d[:, 1]].round().astype(int)

    def __len__(self) -> int:
        return len(self.frames)

    def index_at(self, t: float) -> int:
        """The frame shown at time ``t`` (the last frame at or before it)."""
        return int(np.clip(np.searchsorted(self.times, t + 1e-9) - 1, 0, len(self.times) - 1))

    def frame(self, i: int) -> np.ndarray:
        return enlarge(self.frames[i], self.scale)

    def reconstruction(self, i: int) -> np.ndarray:
        return enlarge(self.recon[i], self.scale)

    def trajectory(self, i: int) -> np.ndarray:
        img = self._traj_bg.copy()
        cv2.circle(img, tuple(int(v) for v in self._traj_px[i]), 5, (220, 0, 0), -1)
        return img

    def signals(self, i: int) -> np.ndarray:
        img = self._sig_bg.copy()
        x = int(self._sig_x[i])
        cv2.line(img, (x, self._sig_y[0]), (x, self._sig_y[1]), (220, 0, 0), 1)
        return img


def event_scrubber(pictures: EventScrubberPictures, title: str = ""):
    """One ipywidgets view with a time slider: the frame, its reconstruction, the current point on
    the 2-D latent trajectory, and the boundary signals with a cursor (all ``ipywidgets.Image`` PNGs)."""
    import ipywidgets as W

    times = pictures.times
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    slider = W.FloatSlider(value=float(times[0]), min=float(times[0]), max=float(times[-1]), step=step,
                           description="time (s)", readout_format=".2f", continuous_update=True,
                           layout=W.Layout(width="600px"))
    frame, recon = W.Image(format="png"), W.Image(format="png")
    traj, sig = W.Image(format="png"), W.Image(format="png")
    info = W.HTML()

    def show(*_):
        i = pictures.index_at(slider.value)
        frame.value = png_bytes(pictures.frame(i))
        recon.value = png_bytes(pictures.reconstruction(i))
        traj.value = png_bytes(pictures.trajectory(i))
        sig.value = png_bytes(pictures.signals(i))
        info.value = f"<b>{title}</b> frame {i} &nbsp; t = {times[i]:.2f} s"

    slider.observe(show, names="value")
    show()
    view = W.VBox([slider, info,
                   W.HBox([W.VBox([W.HTML("frame"), frame]), W.VBox([W.HTML("reconstruction"), recon]),
                           W.VBox([W.HTML("trajectory"), traj])]),
                   sig])
    view.slider, view.images = slider, {"frame": frame, "reconstruction": recon, "trajectory": traj, "signals": sig}
    return view


def event_scrubber_figure(pictures: EventScrubberPictures, times_s: list[float]):
    """A static figure of the scrubber at a few times: one row per time (frame, reconstruction, trajectory, signals)."""
    import matplotlib.pyplot as plt

    shapes = [pictures.frame(0).shape, pictures.reconstruction(0).shape, pictures._traj_bg.shape,
              pictures._sig_bg.shape]
    ratios = [w / h for h, w, _ in shapes]      # every picture of a row gets the same height
    fig, axes = plt.subplots(len(times_s), 4, figsize=(2.4 * sum(ratios), 2.6 * len(times_s)),
                             gridspec_kw={"width_ratios": ratios}, squeeze=False)
    for row, t in zip(axes, times_s):
        i = pictures.index_at(t)
        for a, img, name in zip(row, [pictures.frame(i), pictures.reconstruction(i), pictures.trajectory(i),
                                      pictures.signals(i)], ["frame", "reconstruction", "trajectory", "signals"]):
            a.imshow(img)
            a.set_xticks([]), a.set_yticks([])
            a.set_title(f"{name}, t = {pictures.times[i]:.1f} s", fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Latent sliders and interpolation (chapter 2): decode points of an MMD-VAE's latent space live


def latent_directions(embeddings: np.ndarray, max_dims: int = 8) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Directions to slide along: the latent axes if ``z_dim <= max_dims``, else the leading principal
    directions of ``embeddings`` (N, z_dim). Returns (directions (k, z_dim), their spread (k,), names)."""
    z = np.asarray(embeddings, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"expected embeddings shaped (N >= 2, z_dim), got {z.shape}")
    d = z.shape[1]
    if d <= max_dims:
        return np.eye(d), z.std(0), [f"z{i}" for i in range(d)]
    _, directions, spreads = principal_axes(z, max_dims)
    return directions, spreads, [f"pc{i + 1}" for i in range(max_dims)]


def latent_traversal(model, z0: np.ndarray, directions: np.ndarray, spreads: np.ndarray,
                     values: tuple[float, ...] = (-2, -1, 0, 1, 2)) -> np.ndarray:
    """Decoded frames (k * len(values), S, S, 3): row i moves ``z0`` along direction i by ``value * spread``.

    The static counterpart of :func:`latent_sliders`.
    """
    z = np.stack([z0 + v * s * u for u, s in zip(directions, spreads) for v in values])
    return decode(model, z.astype(np.float32))


def latent_sliders(model, embeddings: np.ndarray, frames: np.ndarray | None = None, start: int = 0,
                   max_sliders: int = 8, span: float = 3.0, scale: int = 4):
    """Sliders over an MMD-VAE's latent space, decoding live to an ``ipywidgets.Image``.

    Start from frame ``start``'s code (a slider picks the frame); one slider per latent dimension,
    or per leading principal direction when ``z_dim > max_sliders``, each in units of the spread of
    the codes along it (-``span`` .. ``span``). ``frames`` (N, S, S, 3), if given, shows the chosen
    original beside the decoded image. The widget's ``.decoded`` attribute is the decoded Image.
    """
    import ipywidgets as W


    embeddings = np.asarray(embeddings, dtype=np.float32)
    directions, spreads, names = latent_directions(embeddings, max_sliders)
    frame = W.IntSlider(start, 0, len(embeddings) - 1, description="start frame", continuous_update=False,
                        layout=W.Layout(width="480px"))
    sliders = [W.FloatSlider(0.0, min=-span, max=span, step=0.1, description=n, continuous_update=True,
                             readout_format=".1f") for n in names]
    reset = W.Button(description="reset to frame")
    decoded = W.Image(format="png")
    original = W.Image(format="png")
    info = W.HTML()

    def code() -> np.ndarray:
        z = embeddings[frame.value].astype(np.float64)
        for s, u, sd in zip(sliders, directions, spreads):
            z = z + s.value * sd * u
        return z.astype(np.float32)

    def show(*_):
        decoded.value = png_bytes(decode(model, code()[None])[0], scale)
        info.value = f"frame {frame.value}; |z| = {np.linalg.norm(code()):.2f}"

    def set_frame(*_):
        if frames is not None:
            original.value = png_bytes(np.asarray(frames[frame.value]), scale)
        for s in sliders:
            s.unobserve(show, "value")
            s.value = 0.0
            s.observe(show, "value")
        show()

    frame.observe(set_frame, "value")
    reset.on_click(set_frame)
    for s in sliders:
        s.observe(show, "value")
    set_frame()
    pictures = [W.VBox([W.HTML("original"), original])] if frames is not None else []
    pictures.append(W.VBox([W.HTML("decoded"), decoded]))
    box = W.VBox([W.HBox([frame, reset]), W.HBox([W.VBox(sliders), *pictures]), info])
    box.decoded, box.sliders, box.frame = decoded, sliders, frame
    return box


def interpolation_strip(model, z_a: np.ndarray, z_b: np.ndarray, n: int = 8) -> np.ndarray:
    """Decoded frames (n, S, S, 3) at ``n`` evenly spaced points on the straight line from ``z_a`` to ``z_b``."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return decode(model, ((1 - t) * np.asarray(z_a, np.float64) + t * np.asarray(z_b, np.float64)).astype(np.float32))


def interpolation_widget(model, frames: np.ndarray, embeddings: np.ndarray, a: int = 0, b: int = -1,
                         n: int = 8, scale: int = 2):
    """Two frame sliders and the strip between them: original a | n decoded steps | original b."""
    import ipywidgets as W

    last = len(embeddings) - 1
    sa = W.IntSlider(a % (last + 1), 0, last, description="frame a", continuous_update=False)
    sb = W.IntSlider(b % (last + 1), 0, last, description="frame b", continuous_update=False)
    strip = W.Image(format="png")

    def show(*_):
        steps = interpolation_strip(model, embeddings[sa.value], embeddings[sb.value], n)
        row = np.concatenate([np.asarray(frames[sa.value])[None], steps, np.asarray(frames[sb.value])[None]])

        strip.value = png_bytes(image_grid(row, len(row)), scale)

    sa.observe(show, "value")
    sb.observe(show, "value")
    show()
    box = W.VBox([W.HBox([sa, sb]), strip])
    box.strip = strip
    return box


# ------------------------------------------------------------------ chapter 4: VoxEn clip comparison

def clip_comparison(truth: np.ndarray, reconstructions: dict[str, np.ndarray], scale: int = 3):
    """Frame slider (with play) over a clip: ground truth beside the reconstruction a dropdown picks.

    ``truth`` is (T, H, W, 3) uint8; ``reconstructions`` maps a label (e.g. ``"lambda=0.01"``) to a
    clip of the same shape. The picture is truth | |error| x 4 | reconstruction.
    """
    import ipywidgets as W


    truth = np.asarray(truth)
    for k, v in reconstructions.items():
        if np.shape(v) != truth.shape:
            raise ValueError(f"reconstruction {k!r} has shape {np.shape(v)}, the clip {truth.shape}")
    pick = W.Dropdown(options=list(reconstructions), description="decoded")
    slider = W.IntSlider(0, 0, len(truth) - 1, description="frame", layout=W.Layout(width="420px"))
    play = W.Play(interval=120, step=1, max=len(truth) - 1)
    W.jslink((play, "value"), (slider, "value"))
    image, info = W.Image(format="png"), W.HTML()

    def show(*_):
        t, r = truth[slider.value], np.asarray(reconstructions[pick.value][slider.value])
        err = np.clip(np.abs(t.astype(np.int16) - r.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
        image.value = png_bytes(image_grid(np.stack([t, err, r]), ncols=3), scale)
        db = psnr(t[None], r[None])
        quality = "identical" if np.isinf(db) else f"PSNR {db:.1f} dB"
        info.value = f"ground truth | error x4 | {pick.value} &nbsp; frame {slider.value}: {quality}"

    pick.observe(show, names="value")
    slider.observe(show, names="value")
    show()
    return W.VBox([W.HBox([pick, play, slider]), info, image])
