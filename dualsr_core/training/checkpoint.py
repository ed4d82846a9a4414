"""Training checkpoints: model, optimiser, scheduler, every random generator and the loop's counters.

A checkpoint is written atomically (a killed run leaves the previous one intact) and loads with
`torch.load(weights_only=True)`. It carries the run's signature, the settings that decide the
result; resuming under other settings is refused, so a resumed run ends bit-identical to an
uninterrupted one.

Only reached after `require_torch()`.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..io.atomic import atomic_path

CHECKPOINT_FORMAT = "dualsr-checkpoint/1"
# The settings of a checkpoint's signature known before the patches are built, by the Train
# parameter that sets each (the config field has the signature key's name).
EARLY_SETTINGS = {"scale": "SCALE", "epochs": "EPOCHS", "batch_size": "BATCH_SIZE", "patch_size": "PATCH_SIZE",
                  "lr": "LEARNING_RATE", "seed": "SEED"}
# The loop's counters a checkpoint carries besides the model, optimiser, scheduler and generators.
LOOP_STATE = ("epoch", "batch", "iteration", "loss_sum", "loss_count", "best", "history", "seconds")


def rng_state() -> dict:
    """The state of torch's, numpy's and Python's global generators (and CUDA's), as tensors and
    plain values that `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, words, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
             "python": {"version": int(version), "words": list(words), "gauss": gauss}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the generators from `rng_state()`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["words"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, signature: dict, model, optimizer, scheduler, state: dict) -> None:
    """Write a checkpoint atomically; `state` holds the LOOP_STATE values."""
    payload = {"format": CHECKPOINT_FORMAT, "signature": json.dumps(signature, sort_keys=True),
               "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
               "rng": rng_state(), **state}
    with atomic_path(path, parameter="the checkpoint") as tmp:
        torch.save(payload, tmp)


def refuse_other_settings(path: Path, config, elsewhere: str) -> None:
    """Raise InputError, before any work, when the checkpoint at `path` belongs to a run whose SCALE,
    EPOCHS, BATCH_SIZE, PATCH_SIZE, LEARNING_RATE or SEED differ from `config`'s: building the patches
    of the new settings would first replace the old run's. `elsewhere` says how to train beside it
    (another OUTPUT_WEIGHTS, say). A checkpoint that does not load is left to `load_checkpoint`."""
    if not path.is_file():
        return
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        saved = json.loads(payload["signature"])
    except Exception:  # damaged or foreign: load_checkpoint says so, after the patches
        return
    differ = [f"{name} {saved[key]} there, {getattr(config, key)} now" for key, name in EARLY_SETTINGS.items()
              if key in saved and saved[key] != getattr(config, key)]
    if differ:
        raise InputError(f"The work folder '{path.parent}' holds an unfinished training with other settings "
                         f"({', '.join(differ)}); rerun with those settings to resume, choose {elsewhere}, or "
                         f"delete the work folder to start afresh.")


def load_checkpoint(path: Path, signature: dict, model, optimizer, scheduler) -> dict:
    """Restore model, optimiser, scheduler and generators from a checkpoint of a run with this
    signature; returns its LOOP_STATE values. InputError for a damaged, foreign or other-settings file."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise InputError(f"Checkpoint '{path}' cannot be read ({exc.__class__.__name__}). Delete it to start "
                         "training afresh.") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"'{path}' is not a DualSR training checkpoint. Delete it to start training afresh.")
    saved = json.loads(payload["signature"])
    wanted = json.loads(json.dumps(signature, sort_keys=True))
    differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differ:
        detail = ", ".join(f"{k} {saved.get(k)!r} there, {wanted.get(k)!r} now" for k in differ[:4])
        raise InputError(f"Checkpoint '{path}' belongs to a run with other settings ({detail}). Rerun with those "
                         "settings to resume, or delete the checkpoint to start afresh.")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    set_rng_state(payload["rng"])
    return {k: payload[k] for k in LOOP_STATE}
