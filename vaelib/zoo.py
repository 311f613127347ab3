"""Trained models loaded back for use, apart from training: what a reader of a chapter needs, and no trainer.

- ``load_pretrained``: VoxEn's exported reference models (``weights/voxen/lambda_*``, written by
  ``python -m vaelib.voxen_train``), each checked against the SHA-256 in its ``model.json``;
  ``pretrained_records`` their ``model.json``; ``load_voxen_weights`` one exported weights file.
- ``load_mmdvae``: chapter 2's MMD-VAE from its run folder (the weights and model config of its checkpoint).

Reading only: training, export and resuming live in ``vaelib.voxen_train``, ``vaelib.mmdvae_train`` and
``vaelib.train``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from .mmdvae import MMDVAE, MMDVAEConfig
from .paths import PROJECT_ROOT, resolve
from .voxen import VoxEn, VoxEnConfig

WEIGHTS_DIR = PROJECT_ROOT / "weights" / "voxen"
"""VoxEn's reference models, one ``lambda_*`` folder each."""
CHECKPOINT = "checkpoint.pt"
"""The checkpoint file of a ``vaelib.train`` run folder."""


def sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _torch_file(path: Path, what: str, advice: str) -> Any:
    """``torch.load(weights_only=True)`` (no code runs); an unreadable file is a ValueError naming it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated, tampered or not a torch file at all: name the file
        raise ValueError(f"{path} is not a readable {what} ({type(e).__name__}: {e}); {advice}") from e


def load_voxen_weights(path: str | Path, config: VoxEnConfig) -> VoxEn:
    """A VoxEn of ``config`` with the exported (half-precision) weights file ``path``, in float32, in eval mode."""
    path = Path(path)
    state = _torch_file(path, "VoxEn weights file", "export it again with `python -m vaelib.voxen_train`")
    model = VoxEn(config)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (RuntimeError, AttributeError) as e:
        raise ValueError(f"{path} does not match the model of {path.parent / 'voxen.json'}: "
                         f"{str(e).splitlines()[0]}") from e
    return model.eval()


def load_pretrained(weights_dir: str | Path = WEIGHTS_DIR) -> dict[float, VoxEn]:
    """The exported reference models under ``weights_dir`` (one ``lambda_*`` folder each), keyed by lambda.

    Every weights file is checked against the SHA-256 in its ``model.json`` before it is read; a missing,
    changed or mismatched file raises an error naming it and saying what to do.
    """
    root = resolve(weights_dir)
    folders = sorted(root.glob("lambda_*"))
    if not folders:
        raise FileNotFoundError(f"no VoxEn reference weights in {root}: train them with `python -m "
                                f"vaelib.voxen_train` (or set pretrained = False to train in the chapter)")
    models = {}
    for folder in folders:
        for name in ("weights.pt", "voxen.json", "model.json"):
            if not (folder / name).exists():
                raise FileNotFoundError(f"{folder / name} is missing: export the model again with "
                                        f"`python -m vaelib.voxen_train` (or set pretrained = False)")
        record = _record(folder / "model.json")
        if sha256(folder / "weights.pt") != record["sha256"]:
            raise ValueError(f"{folder / 'weights.pt'} was changed or truncated (its SHA-256 differs from "
                             f"{folder / 'model.json'}); restore it from git or export it again")
        models[float(record["lmbda"])] = load_voxen_weights(folder / "weights.pt",
                                                            VoxEnConfig.from_json(folder / "voxen.json"))
    return dict(sorted(models.items()))


def pretrained_records(weights_dir: str | Path = WEIGHTS_DIR) -> dict[float, dict]:
    """The ``model.json`` of every exported reference model, keyed by lambda."""
    recs = [_record(p) for p in sorted(resolve(weights_dir).glob("lambda_*/model.json"))]
    return {float(r["lmbda"]): r for r in recs}


def _record(path: Path) -> dict:
    """An exported model's ``model.json``, checked: JSON with the fields ``voxen_train.export_model`` writes."""
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}): restore it from git or export the model again") from e
    fields = ("lmbda", "steps", "train_s", "sha256", "check")
    missing = [k for k in fields if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(f"{path} lacks the field(s) {missing} that `python -m vaelib.voxen_train` writes: restore it "
                         f"from git or export the model again")
    return record


def load_mmdvae(run_dir: str | Path) -> MMDVAE:
    """The MMD-VAE of a run folder (its ``checkpoint.pt`` and the model config recorded there), on the CPU.

    Chapter 3 decodes chapter 2's codes with it, so chapter 2 need not store a reconstruction of every frame.
    Only the weights and the config are read (``vaelib.train.load_checkpoint`` reads the rest, to resume).
    """
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no trained MMD-VAE in {Path(run_dir)} (no {CHECKPOINT}): run chapter 2 "
                                f"(notebooks/02_mmd_vae.py) or `python -m vaelib.mmdvae_train` into that folder")
    state = _torch_file(path, "checkpoint", "train it again (chapter 2 or `python -m vaelib.mmdvae_train`)")
    try:
        config = json.loads(state["config"])["model"]
        weights = state["model"]
    except (TypeError, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not an MMD-VAE run (its checkpoint has no model weights and settings)") from e
    model = MMDVAE(MMDVAEConfig.from_dict(config))
    model.load_state_dict(weights)
    return model.eval()
