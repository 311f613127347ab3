"""A small, generic PyTorch training loop with exact resume, and the pieces around it.

Any model fits: the trainer needs only

- ``loss_fn(model, batch) -> dict[str, Tensor]`` with a ``"loss"`` key (the other keys are logged),
- ``sample_batch(generator) -> batch``: draws one training batch using the trainer's seeded
  ``torch.Generator`` (the only randomness a batch may use, so a resumed run draws the same batches),
- optionally ``val_fn(model) -> dict[str, float]``, run under ``torch.inference_mode()`` with the
  model in eval mode and the random state put back afterwards.

A run lives in one self-describing folder::

    run_dir/config.json       the TrainConfig plus whatever model/loss config the caller passes
    run_dir/environment.json  versions, device, threads, start time; under "reproducibility" what
                              decides bitwise-equal results (``reproducibility_diff`` compares two runs)
    run_dir/metrics.csv       tidy rows: step, split (train | val), metric, value, time_s
    run_dir/checkpoint.pt     model, optimizer, step, config, RNG states (written atomically)

``train`` called again on the same folder resumes from the checkpoint; a run stopped at any
checkpoint and resumed ends, on CPU, with weights bitwise identical to a run that never stopped.

One process is the default. Under ``torchrun --nproc-per-node N`` the same script trains one model in
N processes with ``DistributedDataParallel`` (``vaelib.distributed``); the checkpoint then holds every
rank's RNG state and resumes exactly with the same N.
"""
from __future__ import annotations

import csv
import inspect
import io
import json
import os
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from . import __version__, distributed
from .config import JSONConfig
from .paths import (
    atomic_path,
    check_free_space,
    claim_output,
    disk_full,
    folder_lock,
    mark_output,
    no_space,
    write_json,
)

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"
RUN_KIND = "training run"          # a run folder's kind of output (vaelib.paths.claim_output)
RUN_FILES = ("config.json", "environment.json", METRICS, CHECKPOINT, "voxen.json")
METRICS_FIELDS = ["step", "split", "metric", "value", "time_s"]


@dataclass
class TrainConfig(JSONConfig):
    """How to train: optimizer (Adam), steps, batch size, seed, device, and how often to log/validate/save."""
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    device: str = "auto"
    log_every: int = 10
    val_every: int = 250
    checkpoint_every: int = 250
    max_seconds: float | None = None  # stop early (with a checkpoint) once training took this long
    # How fast (the GPU path; each also runs on the CPU). See ``train`` for what each does.
    precision: str = "fp32"           # "fp32", or "bf16": autocast the model and loss to bfloat16
    channels_last: bool = False       # convolution weights and batches in channels-last memory layout
    compile: str | None = None        # a torch.compile backend for the model ("inductor"); None: eager
    data_on_device: bool = True       # keep the sampler's frames on the device when they fit

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        for name in ("steps", "batch_size", "log_every", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
# Fields that may change between a run and its resumption without changing what is computed (up to float rounding).
RESUMABLE_CHANGES = {"steps", "device", "max_seconds", "log_every", "val_every", "checkpoint_every",
                     "channels_last", "compile", "data_on_device"}


# ---------------------------------------------------------------------------------------------
# Devices, seeds, environment


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if available, then Apple MPS, then CPU. Any other name is used as given."""
    if name != "auto":
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} asked for, but CUDA is not available here")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {name!r} asked for, but MPS is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy; call it before building a model so its initial weights repeat."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def environment(device: torch.device, world_size: int = 1) -> dict[str, Any]:
    """Versions and hardware, for ``environment.json``; ``"reproducibility"`` holds what decides bitwise results."""
    env: dict[str, Any] = {
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(), "platform": platform.platform(),
        "torch": torch.__version__, "numpy": np.__version__, "vaelib": __version__,
        "device": str(device), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(device)
    env["world_size"] = world_size
    env["reproducibility"] = {**reproducibility(device), "world_size": world_size}
    return env


def reproducibility(device: torch.device) -> dict[str, Any]:
    """What decides whether two runs of one config give bitwise-equal weights (see docs/guide.md, "Reproducibility").

    The same seed, config and values of all these fields give the same weights; a change in any of
    them (another CPU model or vector instruction set, thread count, torch or oneDNN build, GPU)
    may change the order of floating-point sums inside convolutions and matrix products, which
    training then amplifies.
    """
    info = torch.__config__.parallel_info()
    onednn = re.search(r"MKL-DNN v[\w.]+", info)
    rec: dict[str, Any] = {
        "torch": torch.__version__, "numpy": np.__version__, "machine": platform.machine(),
        "cpu_model": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn": onednn.group(0) if onednn else None,
        "torch_threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "device": device.type,
    }
    if device.type == "cuda":
        rec.update(gpu=torch.cuda.get_device_name(device),
                   gpu_capability=list(torch.cuda.get_device_capability(device)),
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   cudnn_deterministic=torch.backends.cudnn.deterministic,
                   cudnn_benchmark=torch.backends.cudnn.benchmark,
                   cuda_matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
                   cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                   CUBLAS_WORKSPACE_CONFIG=os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    return rec


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def reproducibility_diff(run_a: str | os.PathLike, run_b: str | os.PathLike) -> dict[str, tuple[Any, Any]]:
    """The fields of ``reproducibility`` (in each run's ``environment.json``) that differ: {field: (a, b)}.

    Empty means the two runs may be compared bitwise (given the same config and seed); otherwise
    expect differences of float rounding that training grows into different weights.
    """
    recs = []
    for run in (run_a, run_b):
        path = Path(run) / "environment.json"
        if not path.exists():
            raise FileNotFoundError(f"no {path}: not a run folder of vaelib.train")
        recs.append(json.loads(path.read_text()).get("reproducibility", {}))
    a, b = recs
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


# ---------------------------------------------------------------------------------------------
# Checkpoints


def _rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "batches": generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["batches"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    config: dict[str, Any], rng: dict[str, Any], seconds: float = 0.0,
                    log_sums: dict[str, float] | None = None, log_count: int = 0, world_size: int = 1) -> None:
    """Write a checkpoint atomically (a crash mid-write leaves the previous one intact).

    ``world_size``: the number of processes that trained (``rng["ranks"]`` then holds each one's RNG state).
    A disk without room for it raises ``vaelib.paths.NoSpaceError`` naming the folder and the space.
    """
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "config": json.dumps(config), "rng": rng, "seconds": seconds,
             "log_sums": dict(log_sums or {}), "log_count": log_count, "world_size": world_size}
    save_torch(state, path, f"the checkpoint {Path(path).name}", advice=_resume_advice(Path(path)))


def _resume_advice(checkpoint: Path, dropped: str = "") -> str:
    """What running the same command again does after a failure: resume from ``checkpoint``, or start over where
    none was written yet."""
    if checkpoint.exists():
        return "then run the same command again: it resumes from the last checkpoint" + dropped
    return (f"then run the same command again: no checkpoint was written yet ({checkpoint} is absent), so it starts "
            "over from step 0")


def save_torch(obj: Any, path: str | os.PathLike, what: str = "", advice: str = "") -> None:
    """``torch.save`` atomically; a disk without room raises ``vaelib.paths.NoSpaceError`` naming the folder,
    the bytes needed and those free (torch.save onto a full disk says only "[enforce fail at inline_container.cc]").
    """
    buf = io.BytesIO()                    # serialized in memory first: its size is known before writing
    torch.save(obj, buf)
    path = Path(path)
    what = what or path.name
    path.parent.mkdir(parents=True, exist_ok=True)
    check_free_space(path.parent, what, need=buf.tell(), advice=advice)
    try:
        with atomic_path(path, suffix=path.suffix) as tmp:
            tmp.write_bytes(buf.getbuffer())
    except OSError as e:
        if disk_full(e):
            raise no_space(path.parent, what, need=buf.tell(), advice=advice) from e
        raise


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` (no arbitrary code runs)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - name the file in the message
        raise ValueError(f"{path} is not a readable checkpoint: {e}") from e
    missing = {"model", "optimizer", "step", "config", "rng"} - set(state)
    if missing:
        raise ValueError(f"{path} is not a training checkpoint (missing {sorted(missing)})")
    state["config"] = json.loads(state["config"])
    return state


# ---------------------------------------------------------------------------------------------
# Metrics log


def read_metrics(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The run's ``metrics.csv`` as a tidy DataFrame (step, split, metric, value, time_s)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return pd.DataFrame(columns=METRICS_FIELDS)
    text = path.read_text()
    # a row cut by a full disk or a kill has no line end yet: it was never logged
    return pd.read_csv(io.StringIO(text[:text.rfind("\n") + 1]))


def _truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop logged rows after ``step`` (a run that died past its last checkpoint logged them)."""
    path = run_dir / METRICS
    if not path.exists():
        return
    df = read_metrics(run_dir)
    with atomic_path(path, suffix=".csv") as tmp:
        df[df["step"] <= step].to_csv(tmp, index=False)


class _MetricsWriter:
    def __init__(self, path: Path):
        self.path = path
        new = not path.exists()
        self.file = open(path, "a", newline="")
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(METRICS_FIELDS)

    def write(self, step: int, split: str, values: dict[str, float], time_s: float) -> None:
        with self._full_disk_named():
            for k, v in values.items():
                self.writer.writerow([step, split, k, f"{float(v):.8g}", f"{time_s:.3f}"])
            self.file.flush()

    def close(self) -> None:
        with self._full_disk_named():
            self.file.close()

    @contextmanager
    def _full_disk_named(self) -> Iterator[None]:
        """A full disk while writing the log raises ``NoSpaceError`` naming it and how to go on; other errors pass."""
        try:
            yield
        except OSError as e:
            if disk_full(e):
                raise no_space(self.path.parent, self.path.name, advice=_resume_advice(
                    self.path.parent / CHECKPOINT, " and drops the rows logged after it")) from e
            raise


# ---------------------------------------------------------------------------------------------
# The loop


@dataclass
class TrainResult:
    run_dir: Path
    step: int            # steps done in total (across resumptions)
    seconds: float       # training time in total (across resumptions)
    last_val: dict[str, float]

    @property
    def metrics(self) -> pd.DataFrame:
        return read_metrics(self.run_dir)


def _to_device(batch: Any, device: torch.device, layout: dict[int, torch.memory_format] | None = None) -> Any:
    """``batch`` (tensors, or lists/tuples/dicts of them) on ``device``; in ``layout``'s memory format by rank."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return batch.contiguous(memory_format=layout[batch.ndim]) if layout and batch.ndim in layout else batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device, layout) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device, layout) for k, v in batch.items()}
    return batch


def _channels_last(model: nn.Module) -> dict[int, torch.memory_format]:
    """Put the model's 4-d (2D convolution) and 5-d (3D convolution) weights in channels-last layout.

    Returns the layouts by tensor rank, for the batches."""
    layout = {4: torch.channels_last, 5: torch.channels_last_3d}
    for p in model.parameters():
        if p.ndim in layout:
            p.data = p.data.contiguous(memory_format=layout[p.ndim])
    return layout


def _validate(model: nn.Module, val_fn: Callable[[nn.Module], dict[str, float]],
              device: torch.device) -> dict[str, float]:
    # The random state is put back afterwards, so validating (or not) never changes training.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model.eval()
        with torch.inference_mode():
            out = {k: float(v) for k, v in val_fn(model).items()}
        model.train()
    return out


def train(model: nn.Module,
          loss_fn: Callable[[nn.Module, Any], dict[str, torch.Tensor]],
          sample_batch: Callable[[torch.Generator], Any],
          config: TrainConfig,
          run_dir: str | os.PathLike,
          val_fn: Callable[[nn.Module], dict[str, float]] | None = None,
          extra_config: dict[str, Any] | None = None,
          resume: bool = True,
          stop_at: int | None = None,
          optimizer_fn: Callable[[nn.Module, TrainConfig], torch.optim.Optimizer] | None = None,
          progress: bool = True) -> TrainResult:
    """Train ``model`` for ``config.steps`` steps in ``run_dir``; see the module doc for the callables.

    ``run_dir`` must be absent, empty or a run folder (anything else is refused, never replaced), and one
    run at a time writes it (a second is refused, naming the first one's pid). ``resume=True`` continues
    from ``run_dir/checkpoint.pt`` if there is one (its config must match, apart from steps/device/logging
    intervals); ``resume=False`` starts over. ``stop_at`` stops after that step, with a checkpoint (for
    tests, or to train in pieces). ``extra_config`` (e.g.
    the model and loss configs) is stored in ``config.json`` beside the TrainConfig. ``optimizer_fn``
    replaces the default Adam. Returns a ``TrainResult``; the model is left on the device, in eval mode.

    Started by ``torchrun`` with several processes, every process calls ``train`` alike and they
    train one model together (see ``vaelib.distributed``): ``config.batch_size`` is the global batch,
    each process loads its share, rank 0 alone writes ``run_dir``, and ``loss_fn`` receives the model
    wrapped in ``DistributedDataParallel`` (call it; its other methods are on ``model.module``).
    """
    device = distributed.setup(config.device) if distributed.launched() else pick_device(config.device)
    run_dir = Path(run_dir)
    with ExitStack() as held:   # rank 0 holds the run folder's lock until the run ends: one writer per folder
        error = None
        if distributed.is_main():
            try:
                claim_output(run_dir, RUN_KIND, own=RUN_FILES)
                held.enter_context(folder_lock(run_dir, "training run", "the run folder"))
            except (OSError, RuntimeError) as e:
                error = e
        error = distributed.broadcast_object(error)
        if error is not None:
            raise error
        return _train(model, loss_fn, sample_batch, config, run_dir, device, val_fn, extra_config, resume,
                      stop_at, optimizer_fn, progress)


def _train(model, loss_fn, sample_batch, config: TrainConfig, run_dir: Path, device: torch.device, val_fn,
           extra_config, resume, stop_at, optimizer_fn, progress) -> TrainResult:
    world, rank, main = distributed.world_size(), distributed.rank(), distributed.is_main()
    if config.batch_size % world:
        divisors = [n for n in range(1, min(config.batch_size, 64) + 1) if config.batch_size % n == 0]
        raise ValueError(f"TrainConfig.batch_size={config.batch_size} (the global batch) cannot be split evenly "
                         f"over the {world} processes torchrun started; start a number of processes that "
                         f"divides it (one of {divisors}) or make the batch size a multiple of {world}")
    shard = distributed.shard_range(config.batch_size) if world > 1 else None
    resident = False
    if config.data_on_device and hasattr(sample_batch, "to"):  # vaelib.data's samplers
        resident = getattr(sample_batch.to(device), "store", None) is not None
    draw = _sharded(sample_batch, shard)
    model.to(device)
    layout = _channels_last(model) if config.channels_last else None
    full_config = {"train": config.to_dict(), **(extra_config or {})}
    optimizer = optimizer_fn(model, config) if optimizer_fn else torch.optim.Adam(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)  # the same on every rank: the global batch
    # the loss's own randomness (e.g. prior samples, noise) starts here too; each rank has its own stream
    torch.manual_seed(distributed.rank_seed(config.seed, rank))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False

    step, seconds_before = 0, 0.0
    sums: dict[str, float] = {}  # training losses summed since the last log row
    n_sum = 0
    ckpt_path = run_dir / CHECKPOINT
    # Rank 0 reads (or clears) the run folder and sends what it found, or the error, to every rank.
    found: dict[str, Any] = {"state": None}
    if main:
        try:
            mark_output(run_dir, RUN_KIND)
            if resume and ckpt_path.exists():
                state = load_checkpoint(ckpt_path)  # on CPU: RNG states must stay there
                _check_same_run(state["config"], full_config, ckpt_path)
                saved_world = int(state.get("world_size", 1))
                if saved_world != world:
                    raise ValueError(f"{ckpt_path} was written by a run of {saved_world} process(es); this one has "
                                     f"{world}. Resume with the same number (torchrun --nproc-per-node "
                                     f"{saved_world}, or no torchrun for 1) so it continues exactly, or pass "
                                     f"resume=False to start over")
                found["state"] = state
            else:
                for name in (CHECKPOINT, METRICS):
                    (run_dir / name).unlink(missing_ok=True)
        except (ValueError, FileNotFoundError, OSError) as e:
            found = {"error": e}
    found = distributed.broadcast_object(found)
    if "error" in found:
        raise found["error"]
    if found["state"] is not None:
        state = found["state"]
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"]["ranks"][rank] if world > 1 else state["rng"], generator, device)
        step, seconds_before = int(state["step"]), float(state.get("seconds", 0.0))
        sums, n_sum = dict(state.get("log_sums", {})), int(state.get("log_count", 0))
        if main:
            _truncate_metrics(run_dir, step)
    if main:
        write_json(run_dir / "config.json", full_config)
        write_json(run_dir / "environment.json", {**environment(device, world), "data_on_device": resident})

    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        net = torch.compile(net, backend=config.compile)
    amp_dtype = PRECISIONS[config.precision]
    target = min(config.steps, stop_at) if stop_at is not None else config.steps
    log = _MetricsWriter(run_dir / METRICS) if main else None
    running: dict[str, float] = {}
    last_val: dict[str, float] = {}
    saved_step = step
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(total=target, initial=min(step, target), desc=run_dir.name, disable=not (progress and main),
               dynamic_ncols=True)
    pending: list[torch.Tensor] = []  # each step's losses, kept on the device until the next sync
    keys: list[str] = []
    try:
        while step < target:
            batch = _to_device(draw(generator), device, layout)
            with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                out = loss_fn(net, batch)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            keys = list(out)
            pending.append(torch.stack([torch.as_tensor(out[k]).detach().double().reshape(()).to(device)
                                        for k in keys]))
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            bar.update(1)

            elapsed = seconds_before + time.perf_counter() - t0
            if config.max_seconds is not None:
                # Under torchrun every rank stops at the first step at which any rank ran out of time: one
                # byte over gloo on the host per step (no device sync), only when there is a budget.
                if distributed.any_rank(elapsed - seconds_before >= config.max_seconds):
                    target = step  # out of time: finish this step properly (log, validate, save)
            sync = (step % config.log_every == 0 or step % config.val_every == 0
                    or step % config.checkpoint_every == 0 or step == target)
            if sync:
                # The only host copy between steps (and the losses' collective): each step's losses since
                # the last sync, averaged over ranks. Every checkpoint step is a sync step, so a
                # non-finite loss on any rank stops the run before a checkpoint holds its weights.
                flat = distributed.all_mean(torch.stack(pending).flatten()).tolist()
                rows = [flat[i:i + len(keys)] for i in range(0, len(flat), len(keys))]
                pending = []
                for i, row in enumerate(rows):
                    values = dict(zip(keys, row))
                    if not np.isfinite(values["loss"]):
                        raise FloatingPointError(f"loss is {values['loss']} at step {step - len(rows) + i + 1} "
                                                 f"in {run_dir}")
                    for k, v in values.items():
                        sums[k] = sums.get(k, 0.0) + v
                        running[k] = v if k not in running else 0.9 * running[k] + 0.1 * v
                    n_sum += 1
            # The end of a run logs and validates; a pause at ``stop_at`` only saves, so a paused and
            # resumed run logs exactly the rows of an uninterrupted one.
            last = step == target and (stop_at is None or step < stop_at or step == config.steps)
            pause = step == target and not last
            if step % config.log_every == 0 or last:
                if log is not None:
                    log.write(step, "train", {k: s / n_sum for k, s in sums.items()}, elapsed)
                sums, n_sum = {}, 0
                bar.set_postfix({k: f"{v:.4g}" for k, v in running.items()}, refresh=False)
            if val_fn is not None and (step % config.val_every == 0 or last):
                last_val = _validate(model, val_fn, device)  # on every rank (a val_fn may use collectives)
                if log is not None:
                    log.write(step, "val", last_val, elapsed)
            if step % config.checkpoint_every == 0 or last or pause:
                rngs = distributed.gather_objects(_rng_state(generator, device))
                if main:
                    rng = {**rngs[0], "ranks": rngs} if world > 1 else rngs[0]
                    save_checkpoint(ckpt_path, model, optimizer, step, full_config, rng,
                                    seconds=seconds_before + time.perf_counter() - t0, log_sums=sums,
                                    log_count=n_sum, world_size=world)
                saved_step = step
    except BaseException as e:
        if world > 1:
            print(f"[vaelib.train rank {rank}/{world}] stopped at step {step} by {type(e).__name__}: {e}\n"
                  f"  {ckpt_path} holds step {saved_step}; run the same torchrun command again to resume from it "
                  f"(if another rank failed first, its message above says why)", file=sys.stderr, flush=True)
        raise
    finally:
        bar.close()
        if log is not None:
            log.close()
    distributed.barrier()  # rank 0's last checkpoint is written before any rank returns (and may read it)
    model.eval()
    if val_fn is not None and not last_val:  # nothing left to train: still report validation
        last_val = _validate(model, val_fn, device)
    return TrainResult(run_dir, step, seconds_before + time.perf_counter() - t0, last_val)


def _sharded(sample_batch: Callable[..., Any], shard: slice | None) -> Callable[[torch.Generator], Any]:
    """``sample_batch`` drawing only this rank's ``shard`` of the global batch.

    A sampler with a ``shard`` keyword (``vaelib.data``'s) loads only that part; any other draws the
    whole global batch and keeps the slice along dim 0. In one process (``shard=None``) it is unchanged.
    """
    if shard is None:
        return sample_batch
    if "shard" in inspect.signature(sample_batch).parameters:
        return lambda generator: sample_batch(generator, shard=shard)
    return lambda generator: _take(sample_batch(generator), shard)


def _take(batch: Any, shard: slice) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch[shard]
    if isinstance(batch, (list, tuple)):
        return type(batch)(_take(b, shard) for b in batch)
    if isinstance(batch, dict):
        return {k: _take(v, shard) for k, v in batch.items()}
    return batch


def _check_same_run(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Refuse to resume the run of ``path`` with another config, naming each setting that differs."""
    def strip(cfg: dict[str, Any]) -> dict[str, Any]:
        cfg = json.loads(json.dumps(cfg))
        if "train" in cfg:  # a run from before a field existed ran with its default
            cfg["train"] = {**TrainConfig().to_dict(), **cfg["train"]}
        for k in RESUMABLE_CHANGES:
            cfg.get("train", {}).pop(k, None)
        return cfg
    a, b = strip(saved), strip(current)
    if "data" in b and "data" not in a:     # a run from before its data was recorded: nothing to compare with
        warnings.warn(f"{path} does not record the data it was trained on: resuming it without checking that "
                      "the frames and the split are the same", stacklevel=4)
        b.pop("data")
    if a != b:
        diff = _differences(a, b)
        shown = "; ".join(f"{k}: {_short(x)} in the run, {_short(y)} now" for k, x, y in diff[:6])
        data = [k for k, _, _ in diff if k.startswith("data")]
        why = (" It was trained on other data (" + ", ".join(data) + "): resuming would go on on other frames."
               if data else "")
        raise ValueError(f"{path} was trained with a different config ({shown}{' ...' if len(diff) > 6 else ''})."
                         f"{why} Pass resume=False to start over, or use another run folder")


def _differences(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """The dotted keys whose values differ between two JSON-like configs, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(k, "(absent)"), b.get(k, "(absent)"), f"{prefix}{k}.")
        return out
    return [] if a == b else [(prefix.rstrip("."), a, b)]


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n - 3] + "..."
