"""Training of CoarSR (docs/method.md#training), resumable and reproducible.

One mini-batch holds patches of one scene. The network walks the scene's good bands in
processing order (bad bands are neither targets nor neighbours; the neighbour table comes from
`partition.neighbour_table(order)`), carrying the feature state from band to band, detached
(truncated back-propagation of length 1), and predicts each band as a residual over the PIL
bicubic upsampling of the LR band. The loss is L1.

Two ways to step (`band_steps`):
* "per_band": one Adam step per band, as the reference code: zero the gradients, forward band i
  with the state, back-propagate its L1 loss, step, carry the detached state.
* "summed" (default): the state-independent part of the network runs batched over a chunk of
  bands, the state recursion runs band after band (detached), and the mean over bands of the
  per-band L1 losses is back-propagated chunk by chunk (gradients accumulate; chunking changes
  nothing since no gradient crosses bands), then one Adam step per mini-batch. It batches bands
  where that pays (GPUs); on a 2-core CPU both modes cost the same per mini-batch (measured).

Adam (betas 0.9, 0.999, eps 1e-8, no weight decay); the learning rate is halved every
max(1, epochs // 3) epochs (StepLR stepped at the end of an epoch), which replaces the
reference's undocumented x0.1 milestones (docs/method.md D5) by the README's "halving" with a period that
scales with the run. Everything random is seeded, and the batch order of an epoch is a pure
function of (seed, epoch), so a run resumed from any checkpoint ends with bit-identical weights.

Files: `<workdir>/patches.h5` (the patches, resumable), `<workdir>/checkpoint.pt` (every epoch,
every `checkpoint_every` batches and on cancel; loads with `torch.load(weights_only=True)`), the
best weights by validation PSNR in `output_weights` (+ `.json`), `<output>.csv` and
`<output>_curve.png` beside them.

Several processes: launched with torchrun (WORLD_SIZE > 1), the model is wrapped in
DistributedDataParallel (nccl on CUDA, gloo on the CPU); every process takes its share of each
batch (so all step through the same scene together) and only rank 0 writes files and validates.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import random
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .. import __version__
from ..errors import Cancelled, InputError
from ..feedback import Feedback
from ..io.atomic import atomic_path, describe_os_error, prepare_folder, refuse_inputs, remove_quietly
from ..io.scenes import find_scenes, load_scene, scene_names
from ..network import partition, weights
from ..network.torch_support import require_torch, select_device, usable_cores
from ..tools import resize
from ..tools.tiling import Region
from .patches import POSITIONS_PER_SCALE, PatchDataset, build_patches, region_tuple, validation_crop

BAND_STEPS = ("summed", "per_band")
CHECKPOINT_FORMAT = "dualsr-checkpoint/1"
CSV_FIELDS = ("epoch", "iteration", "train_loss", "val_psnr", "val_ssim", "val_sam", "bicubic_psnr", "lr", "seconds")
PAPER = ("Q. Li, Y. Yuan, X. Jia, Q. Wang, Dual-Stage Approach Toward Hyperspectral Image Super-Resolution, "
         "IEEE TIP 31, 2022")


def train(scene_paths, output_weights, scale: int, epochs: int = 20, batch_size: int = 16, patch_size: int = 32,
          lr: float = 1e-4, val_fraction: float = 0.1, device: str = "auto", n_feats: int = 64, n_blocks: int = 2,
          n_asfm: int = 2, resume_from=None, seed: int = 1, workdir=None,
          validation: list[tuple[str | os.PathLike, Region]] | None = None, max_iterations: int | None = None,
          feedback: Feedback | None = None, half: bool = False, band_steps: str = "summed",
          checkpoint_every: int = 200, band_chunk: int | None = None, amp: bool = False,
          positions_per_scale: int = POSITIONS_PER_SCALE, max_patches_per_scene: int | None = None,
          zero_last: bool = False, band_window: int | None = None, delete_work: bool = False) -> dict:
    """Train CoarSR on hyperspectral scenes and write the best weights by validation PSNR.

    Args:
        scene_paths: scene files and/or folders (see `scenes.find_scenes`).
        output_weights: the weights file to write (`.pt`).
        scale: 2, 3, 4 or 8.
        epochs: passes over the patches.
        batch_size: patches per mini-batch (per process).
        patch_size: LR patch side; HR patches are patch_size * scale.
        lr: Adam's learning rate, halved every max(1, epochs // 3) epochs.
        val_fraction: without `validation`, a window of about this fraction of each scene's area
            is held out for validation (never sampled for training); 0 disables validation.
        device: 'auto', 'cpu' or 'cuda'.
        n_feats, n_blocks, n_asfm: network size (ignored with `resume_from`: its header rules).
        resume_from: weights file to fine-tune from.
        seed: seeds patches, initialisation and batch order.
        workdir: folder of patches.h5 and checkpoint.pt (default `<output stem>.work` beside it).
            A checkpoint found there is resumed exactly.
        validation: explicit (scene path, Region) validation windows (replaces val_fraction).
        max_iterations: stop after this many mini-batches in all (then validate and checkpoint).
        feedback: progress (per batch), cancel (per batch) and log callbacks.
        half: store the weights as fp16.
        band_steps: 'summed' or 'per_band' (see the module docstring).
        checkpoint_every: also checkpoint every this many mini-batches.
        band_chunk: bands per batched pass in 'summed' mode (default: by device).
        amp: bf16 autocast on CUDA.
        positions_per_scale, max_patches_per_scene: patch sampling (see `patches.build_patches`).
        band_window: train each mini-batch on a random run of this many consecutive bands (in
            processing order; the run's first band starts a fresh state) instead of all bands. The
            state is detached between bands anyway, so this only shortens the recurrence the
            network sees, and it makes a step on a 200-band scene many times cheaper. The start
            is a pure function of (seed, iteration), so resuming stays exact. None: all bands.
        zero_last: start the last convolution at zero (g = 0 and bias 0 under weight norm), so the
            untrained network outputs exactly the bicubic skip; the reference uses PyTorch's
            default initialisation (False), whose random residual costs many iterations to undo.
        delete_work: remove the work folder (patches, checkpoint) once the weights are written.
    Returns:
        dict with OUTPUT_WEIGHTS, CSV, CURVE, CHECKPOINT, PATCHES, best (validation metrics of the
        saved weights), epochs_done, iterations, seconds.
    """
    torch = require_torch()
    feedback = feedback or Feedback()
    _check_arguments(scale, epochs, batch_size, patch_size, lr, val_fraction, band_steps, checkpoint_every,
                     max_iterations, band_chunk, band_window)
    dist = _Distributed(torch, device)
    torch_device = dist.device
    is_main = dist.rank == 0
    if not is_main:  # one voice: rank 0 reports; cancel still reaches every process through rank 0
        feedback = Feedback(is_cancelled=feedback.is_cancelled)
    output = Path(output_weights)
    workdir = Path(workdir) if workdir else output.with_name(output.stem + ".work")
    files = {"OUTPUT_WEIGHTS": output, "CSV": output.with_suffix(".csv"),
             "CURVE": output.with_name(output.stem + "_curve.png"), "CHECKPOINT": workdir / "checkpoint.pt",
             "PATCHES": workdir / "patches.h5"}

    # --- data ---------------------------------------------------------------------------------
    paths = find_scenes(scene_paths)
    if is_main:
        inputs = [("a training scene", p) for p in paths] + [("RESUME_FROM", resume_from)]
        for key in ("OUTPUT_WEIGHTS", "CSV", "CURVE"):
            refuse_inputs(files[key], inputs, "OUTPUT_WEIGHTS")
        prepare_folder(output, "OUTPUT_WEIGHTS")
    with _work_folder(workdir, files["CHECKPOINT"], is_main):
        names = scene_names(paths)
        by_path = {p: n for p, n in zip(paths, names)}
        windows = [(Path(p).resolve(), _region(r)) for p, r in (validation or [])]
        extra = list(dict.fromkeys(p for p, _ in windows if p not in by_path))
        extra_names = dict(zip(extra, scene_names(extra))) if extra else {}
        named_windows = [(by_path.get(p) or extra_names[p], r) for p, r in windows]
        auto_fraction = 0.0 if validation else float(val_fraction)
        if is_main:
            feedback.log(f"{len(paths)} scene(s): {', '.join(names)}. Building or checking {files['PATCHES']}.")
            build_patches(paths, files["PATCHES"], scale, patch_size, seed, feedback.scaled(0.0, 0.05),
                          max_patches_per_scene=max_patches_per_scene, holdout=named_windows,
                          val_fraction=auto_fraction, positions_per_scale=positions_per_scale)
        dist.barrier()
        dataset = PatchDataset(files["PATCHES"], batch_size, seed, dist.rank, dist.world_size)
        try:
            result = _run(torch, dist, dataset, files, feedback, SimpleNamespace(
                scale=scale, epochs=epochs, batch_size=batch_size, patch_size=patch_size, lr=lr, n_feats=n_feats,
                n_blocks=n_blocks, n_asfm=n_asfm, resume_from=resume_from, seed=seed, max_iterations=max_iterations,
                half=half, band_steps=band_steps, checkpoint_every=checkpoint_every, band_chunk=band_chunk, amp=amp,
                zero_last=zero_last, band_window=band_window,
                names=names, named_windows=named_windows, extra_names=extra_names, windows=windows,
                auto_fraction=auto_fraction, torch_device=torch_device, is_main=is_main))
        finally:
            dataset.close()
    if is_main:
        _report_work_folder(workdir, delete_work, feedback)
    return result


@contextlib.contextmanager
def _work_folder(workdir: Path, checkpoint: Path, is_main: bool):
    """Create the work folder; after a failure remove it again if this run created it and left no
    checkpoint in it. A cancelled or killed run keeps its checkpoint, from which a rerun resumes."""
    created = is_main and not workdir.exists()
    if is_main:
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(describe_os_error(exc, workdir, "the work folder")) from exc
    try:
        yield
    except Cancelled:
        raise
    except BaseException:
        if created and not checkpoint.exists():
            remove_quietly(workdir)
        raise


def _report_work_folder(workdir: Path, delete: bool, feedback: Feedback) -> None:
    """Say what the work folder holds and how big it is, or remove it when asked."""
    files = sorted(p for p in workdir.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files) / 2**20
    if delete:
        remove_quietly(workdir)
        feedback.log(f"Removed the work folder {workdir} ({size:.1f} MB).")
        return
    listed = ", ".join(f"{p.name} ({p.stat().st_size / 2**20:.1f} MB)" for p in files[:6])
    feedback.log(f"The work folder {workdir} holds {listed}: {size:.1f} MB in all. A rerun with the same settings "
                 "returns at once from it, and a longer run continues from it; delete it when you no longer need "
                 "it (or set DELETE_WORK).")


def _check_arguments(scale, epochs, batch_size, patch_size, lr, val_fraction, band_steps, checkpoint_every,
                     max_iterations, band_chunk, band_window):
    from ..network.model import SCALES

    if scale not in SCALES:
        raise InputError(f"SCALE is {scale} but must be one of {', '.join(map(str, SCALES))}.")
    for name, value in (("EPOCHS", epochs), ("BATCH_SIZE", batch_size), ("PATCH_SIZE", patch_size),
                        ("checkpoint_every", checkpoint_every)):
        if int(value) != value or value < 1:
            raise InputError(f"{name} is {value} but must be a whole number of at least 1.")
    if not (lr > 0 and math.isfinite(lr)):
        raise InputError(f"LEARNING_RATE is {lr} but must be a positive number such as 1e-4.")
    if not 0 <= val_fraction < 0.5:
        raise InputError(f"val_fraction is {val_fraction} but must be in [0, 0.5) (0 disables validation).")
    if band_steps not in BAND_STEPS:
        raise InputError(f"band_steps is '{band_steps}' but must be one of {', '.join(BAND_STEPS)}.")
    if max_iterations is not None and max_iterations < 1:
        raise InputError(f"max_iterations is {max_iterations} but must be at least 1 (or None for no limit).")
    if band_window is not None and band_window < 1:
        raise InputError(f"band_window is {band_window} but must be at least 1.")
    if band_chunk is not None and band_chunk < 1:
        raise InputError(f"band_chunk is {band_chunk} but must be at least 1.")


def _region(value) -> Region:
    if isinstance(value, Region):
        return value
    try:
        return Region(*(int(v) for v in value))
    except (TypeError, ValueError) as exc:
        raise InputError(f"Validation window {value!r} must be a Region or (row0, col0, height, width).") from exc


class _Distributed:
    """Process group facts; a single process when WORLD_SIZE is unset or 1."""

    def __init__(self, torch, device: str):
        self.torch = torch
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank, self.local_rank = 0, 0
        self.group = None
        if self.world_size > 1:
            import torch.distributed as tdist

            self.group = tdist
            self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            cuda = device != "cpu" and torch.cuda.is_available()
            if not tdist.is_initialized():
                tdist.init_process_group("nccl" if cuda else "gloo")
            self.rank = tdist.get_rank()
        self.device = select_device(device)
        if self.device.type == "cuda" and self.world_size > 1:
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        elif self.device.type == "cpu" and self.world_size > 1:
            local = int(os.environ.get("LOCAL_WORLD_SIZE", self.world_size))
            torch.set_num_threads(max(1, usable_cores() // local))

    def barrier(self):
        if self.group is not None:
            self.group.barrier()

    def any(self, flag: bool) -> bool:
        """True on every process if `flag` is True on any."""
        if self.group is None:
            return flag
        t = self.torch.tensor([1.0 if flag else 0.0], device=self.device)
        self.group.all_reduce(t)
        return bool(t.item() > 0)

    def mean(self, value: float) -> float:
        if self.group is None:
            return value
        t = self.torch.tensor([value], dtype=self.torch.float64, device=self.device)
        self.group.all_reduce(t)
        return float(t.item()) / self.world_size


def _band_stepper(torch, model):
    """A module whose forward runs a chunk of consecutive bands; DDP wraps it (its forward must be used)."""

    class BandSteps(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x, g2, g3, bic, state):
            """x (B,k,p,p), g2/g3 (B,k,3,p,p), bic (B,k,P,P), state (B,F,p,p) or None -> (B,k,P,P), state."""
            b, k, p, q = x.shape
            flat = lambda t: t.transpose(0, 1).reshape(k * b, -1, *t.shape[-2:])  # noqa: E731 band-major
            f, head = self.model.features(flat(x), flat(g2), flat(g3))
            f = f.view(k, b, *f.shape[1:])
            states = []
            for j in range(k):  # the recurrence, with the state detached between bands
                state = self.model.fuse(f[j], None if state is None else state.detach())
                states.append(state)
            y = self.model.reconstruct(torch.cat(states) + head, flat(bic))
            return y.view(k, b, *y.shape[-2:]).transpose(0, 1), state

    return BandSteps(model)


def _run(torch, dist, dataset, files, feedback, cfg):
    device, is_main = cfg.torch_device, cfg.is_main
    if len(dataset) == 0:
        raise InputError(f"No training patches: every scene is smaller than the HR patch side "
                         f"{cfg.patch_size * cfg.scale} px (PATCH_SIZE {cfg.patch_size} x SCALE {cfg.scale}) "
                         "outside its validation window and nodata. Use a smaller PATCH_SIZE or larger scenes.")
    validation = dataset.validation() + _extra_validation(cfg, feedback) if is_main else []
    if is_main and not validation:
        feedback.warn("No validation data: the weights of the last epoch are saved, without metrics.")

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    model, source = _initial_model(torch, cfg, feedback)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, cfg.epochs // 3), gamma=0.5)
    signature = {"scale": cfg.scale, **model.config.as_dict(), "epochs": cfg.epochs, "batch_size": cfg.batch_size,
                 "patch_size": cfg.patch_size, "lr": cfg.lr, "seed": cfg.seed, "band_steps": cfg.band_steps,
                 "band_chunk": cfg.band_chunk, "scenes": cfg.names, "world_size": dist.world_size,
                 "zero_last": bool(cfg.zero_last) and not cfg.resume_from, "band_window": cfg.band_window,
                 "validation": [[n, *region_tuple(r)] for n, r in cfg.named_windows], "val_fraction": cfg.auto_fraction}
    state = {"epoch": 0, "batch": 0, "iteration": 0, "loss_sum": 0.0, "loss_count": 0, "best": None,
             "history": [], "seconds": 0.0}
    checkpoint = files["CHECKPOINT"]
    # Written in the work folder while training runs; a killed run leaves no finished-looking file.
    staged = {key: checkpoint.parent / files[key].name for key in ("OUTPUT_WEIGHTS", "CSV", "CURVE")}
    if checkpoint.is_file():
        state = _load_checkpoint(torch, checkpoint, signature, model, optimizer, scheduler)
        feedback.log(f"Resuming from {checkpoint}: epoch {state['epoch'] + 1}, batch {state['batch']}, "
                     f"{state['iteration']} mini-batches done.")
    elapsed_before = state["seconds"]
    clock = time.perf_counter()

    stepper = _band_stepper(torch, model)
    ddp = None
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(stepper, device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=True)
    step = _Step(torch, stepper if ddp is None else ddp, ddp, optimizer, dataset.patch_size, cfg.scale, device,
                 cfg.band_steps, cfg.band_chunk or _auto_chunk(torch, device, cfg.batch_size, model.config.n_feats,
                                                                 dataset.patch_size), cfg.amp)
    n_batches, epochs, max_it = len(dataset), cfg.epochs, cfg.max_iterations
    total = epochs * n_batches if max_it is None else min(epochs * n_batches, max_it)
    header_base = {"training_data": ", ".join(cfg.names), "scenes": cfg.names, "paper": PAPER,
                   "normalization": "reflectance (band scale applied), no mean subtraction",
                   "split": _split_text(cfg, validation), "band_steps": cfg.band_steps, "seed": cfg.seed,
                   "patch_size": cfg.patch_size, "batch_size": cfg.batch_size * dist.world_size,
                   "learning_rate": cfg.lr, "lr_schedule": f"halved every {max(1, epochs // 3)} epochs",
                   "epochs_planned": epochs, "initialised_from": source, "band_window": cfg.band_window,
                   "dualsr_version": __version__}
    if is_main:
        feedback.log(f"{n_batches} mini-batches per epoch, {epochs} epoch(s), band steps '{cfg.band_steps}' "
                     f"({step.chunk} band(s) per pass), device {device}.")

    def seconds():
        return elapsed_before + time.perf_counter() - clock

    def save_checkpoint():
        if is_main:
            _save_checkpoint(torch, checkpoint, signature, model, optimizer, scheduler, {**state, "seconds": seconds()})

    stopped = False
    while state["epoch"] < epochs and not stopped:
        epoch = state["epoch"]
        tick, tick_it = time.perf_counter(), state["iteration"]
        for batch in dataset.iterate(epoch, start=state["batch"]):
            if max_it is not None and state["iteration"] >= max_it:
                stopped = True
                break
            if dist.any(feedback.is_cancelled()):
                save_checkpoint()
                dist.barrier()
                raise Cancelled(f"Training cancelled by user at epoch {epoch + 1}, batch {state['batch']}; "
                                f"rerun with the same settings to resume from {checkpoint}.")
            loss = dist.mean(step(batch, _window(cfg, state["iteration"], len(batch.order))))
            state.update(batch=state["batch"] + 1, iteration=state["iteration"] + 1,
                         loss_sum=state["loss_sum"] + loss, loss_count=state["loss_count"] + 1)
            feedback.progress(min(1.0, 0.05 + 0.95 * state["iteration"] / total))
            if state["iteration"] % cfg.checkpoint_every == 0:
                save_checkpoint()
                rate = (state["iteration"] - tick_it) / (time.perf_counter() - tick)
                feedback.log(f"Epoch {epoch + 1}/{epochs}, batch {state['batch']}/{n_batches}: "
                             f"L1 {state['loss_sum'] / state['loss_count']:.5f}, {rate:.3g} mini-batches/s.")
        history = state["history"]
        if history and history[-1]["iteration"] == state["iteration"]:
            break  # this point was validated before (a rerun of a finished run)
        row = {"epoch": round(epoch + state["batch"] / n_batches, 4), "iteration": state["iteration"],
               "train_loss": state["loss_sum"] / max(1, state["loss_count"]), "lr": optimizer.param_groups[0]["lr"]}
        if is_main:
            row.update(_validate(model, validation, device))
            row["seconds"] = seconds()
        history.append(row)
        if is_main and (not validation or state["best"] is None or row["val_psnr"] > state["best"]["val_psnr"]):
            state["best"] = dict(row)
            header = {**header_base, "epochs": row["epoch"], "iterations": row["iteration"],
                      "wall_seconds": row["seconds"], "validation": _metrics_of(row)}
            weights.save(staged["OUTPUT_WEIGHTS"], model, header, half=cfg.half)
        if state["batch"] >= n_batches:
            scheduler.step()
            state.update(epoch=epoch + 1, batch=0, loss_sum=0.0, loss_count=0)
        if is_main:
            _write_csv(staged["CSV"], history)
            _write_curve(staged["CURVE"], history)
            feedback.log(_epoch_line(row, epochs))
        save_checkpoint()
        dist.barrier()
    if is_main:  # the training ended as asked: only now do the weights and their reports appear
        for key, path in staged.items():
            _publish(path, files[key])
        _publish(staged["OUTPUT_WEIGHTS"].with_suffix(".json"), files["OUTPUT_WEIGHTS"].with_suffix(".json"))
    best = state["best"] or {}
    return {**{k: str(v) for k, v in files.items()}, "best": _metrics_of(best) if best else None,
            "best_epoch": best.get("epoch"), "epochs_done": state["epoch"], "iterations": state["iteration"],
            "seconds": seconds(), "band_steps": cfg.band_steps, "device": str(device)}


def _extra_validation(cfg, feedback) -> list[dict]:
    """Crops of validation windows on scenes that are not training scenes (loaded here)."""
    items, scenes = [], {}
    for path, region in cfg.windows:
        if path not in cfg.extra_names:
            continue
        if path not in scenes:
            scenes[path] = load_scene(path, cfg.extra_names[path])
        scene = scenes[path]
        crop = validation_crop(scene, region, cfg.scale)
        items.append({"name": scene.name, "region": region, **crop, "good_bands": scene.good_bands,
                      "order": scene.order})
    if items:
        feedback.log(f"{len(items)} validation window(s) on scenes outside the training data.")
    return items


def _split_text(cfg, validation) -> str:
    windows = "; ".join(f"{v['name']} rows {v['region'].row0}-{v['region'].row0 + v['region'].height - 1} "
                        f"cols {v['region'].col0}-{v['region'].col0 + v['region'].width - 1}" for v in validation)
    if not validation:
        return "no validation"
    how = ("explicit windows" if cfg.named_windows
           else f"automatic windows of about {cfg.auto_fraction:.0%} of each scene")
    return f"validation on held-out {how}, never sampled for training: {windows}"


def _initial_model(torch, cfg, feedback):
    from ..network.model import CoarSR, CoarSRConfig, add_weight_norm

    if not cfg.resume_from:
        config = CoarSRConfig(scale=cfg.scale, n_feats=cfg.n_feats, n_blocks=cfg.n_blocks, n_asfm=cfg.n_asfm)
        model = CoarSR(config, weight_normed=True)
        if not cfg.zero_last:
            return model, "random (PyTorch default initialisation)"
        with torch.no_grad():
            model.last.parametrizations.weight.original0.zero_()  # g of w = g v / |v|
            model.last.bias.zero_()
        return model, "random (PyTorch default initialisation), last convolution zero: starts as bicubic"
    from ..network.weights import read

    header, state = read(cfg.resume_from, expected_scale=cfg.scale)
    config = CoarSRConfig(scale=int(header["scale"]), n_feats=int(header["n_feats"]),
                          n_blocks=int(header["n_blocks"]), n_asfm=int(header["n_asfm"]))
    if (config.n_feats, config.n_blocks, config.n_asfm) != (cfg.n_feats, cfg.n_blocks, cfg.n_asfm):
        feedback.log(f"Fine-tuning keeps the network size of {cfg.resume_from}: {config.n_feats} features, "
                     f"{config.n_blocks} blocks, {config.n_asfm} ASFMs.")
    model = CoarSR(config, weight_normed=False)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return add_weight_norm(model), f"fine-tuned from {Path(cfg.resume_from).name} (sha256 {header['sha256'][:12]})"


def _auto_chunk(torch, device, batch_size: int, n_feats: int, patch_size: int) -> int:
    """Bands per batched pass. CPU: feature maps of about 2 MiB, i.e. one band for realistic sizes
    (measured on 2 cores, F=32, batch 16, 32 px: 1 band 35.5 s per mini-batch of 218 bands,
    2 bands 38 s, 4 bands 50 s: bigger passes leave the caches); tiny test nets get several.
    CUDA: as many as about 30% of the free memory holds (about 80 saved feature maps per band)."""
    band_map = batch_size * n_feats * patch_size * patch_size * 4
    if device.type != "cuda":
        return max(1, (2 << 20) // band_map)
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(1, min(64, 0.3 * free // (80 * band_map))))


class _Step:
    """One optimisation step on a mini-batch (see the module docstring for the two modes)."""

    def __init__(self, torch, module, ddp, optimizer, patch_size, scale, device, mode, chunk, amp):
        self.torch, self.module, self.ddp, self.optimizer = torch, module, ddp, optimizer
        self.device, self.mode, self.amp = device, mode, amp and device.type == "cuda"
        self.chunk = 1 if mode == "per_band" else int(chunk)
        big = patch_size * scale
        wy = resize.pil_weights(patch_size, big).toarray()
        self.wy = torch.from_numpy(wy).float().to(device)
        self.wxt = torch.from_numpy(np.ascontiguousarray(wy.T)).float().to(device)
        self.loss = torch.nn.L1Loss()

    def __call__(self, batch, window: tuple[int, int] | None = None) -> float:
        """Train on the bands of `batch.order[window[0]:window[1]]` (default all); returns the mean L1."""
        torch = self.torch
        lr = torch.from_numpy(np.ascontiguousarray(batch.lr)).to(self.device)
        hr = torch.from_numpy(np.ascontiguousarray(batch.hr)).to(self.device)
        order = torch.as_tensor(batch.order, device=self.device)
        table = torch.as_tensor(partition.neighbour_table(batch.order), device=self.device)
        first, end = window or (0, len(batch.order))
        n = end - first
        state, total = None, 0.0
        if self.mode == "summed":
            self.optimizer.zero_grad(set_to_none=True)
        for start in range(first, end, self.chunk):
            stop = min(end, start + self.chunk)
            if self.mode == "per_band":
                self.optimizer.zero_grad(set_to_none=True)
            last = stop == end or self.mode == "per_band"
            sync = self.ddp.no_sync() if (self.ddp is not None and not last) else contextlib.nullcontext()
            with sync:
                x = lr[:, order[start:stop]]
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    y, state = self.module(x, lr[:, table[start:stop, 0]], lr[:, table[start:stop, 1]],
                                           self.wy @ x @ self.wxt, state)
                loss = self.loss(y.float(), hr[:, order[start:stop]])
                weighted = loss * ((stop - start) / n) if self.mode == "summed" else loss
                weighted.backward()
            if self.mode == "per_band":
                self.optimizer.step()
            state = state.detach()
            total += loss.item() * (stop - start)
        if self.mode == "summed":
            self.optimizer.step()
        return total / n


def _window(cfg, iteration: int, bands: int) -> tuple[int, int] | None:
    """The run of consecutive bands of this mini-batch, from (seed, iteration) alone."""
    if not cfg.band_window or cfg.band_window >= bands:
        return None
    start = int(np.random.default_rng((cfg.seed, 2, iteration)).integers(0, bands - cfg.band_window + 1))
    return start, start + cfg.band_window


def _validate(model, items, device) -> dict:
    """Validation metrics (means over the windows) of the model run exactly as inference runs it:
    a folded copy in the inference engine, fp32, the SR not clamped (as the reference's train.py)."""
    from ..evaluation.metrics import psnr, sam, ssim
    from ..network.engine import CoarseEngine
    from ..network.model import CoarSR, fold_weight_norm

    keys = ("val_psnr", "val_ssim", "val_sam", "bicubic_psnr")
    if not items:
        return dict.fromkeys(keys)
    # A folded copy built from the state dict (as weights.save does): the engine prepares and
    # re-lays out the modules it is given, and folding a deepcopy would strip the weight property
    # from the parametrised classes that the copy shares with the training model.
    folded = CoarSR(model.config, weight_normed=True)
    folded.load_state_dict(model.state_dict())
    engine = CoarseEngine(fold_weight_norm(folded), device, precision="fp32", schedule="auto")
    values = {k: [] for k in keys}
    for item in items:
        order = item["order"]
        sr = engine.run(item["lr"], list(order), partition.neighbour_table(order))
        hr, mask = item["hr"][order], item["mask"]
        bicubic = resize.resize(item["lr"][order], hr.shape[-2:], method="pil")
        values["val_psnr"].append(psnr(hr, sr, data_range=1.0, mask=mask))
        try:
            values["val_ssim"].append(ssim(hr, sr, data_range=1.0, mask=mask))
        except ValueError:  # window under 11 x 11 valid pixels
            values["val_ssim"].append(float("nan"))
        values["val_sam"].append(sam(hr, sr, mask=mask))
        values["bicubic_psnr"].append(psnr(hr, bicubic, data_range=1.0, mask=mask))
    out = {}
    for k, v in values.items():
        v = np.asarray(v, dtype=np.float64)
        out[k] = float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else None
    return out


def _metrics_of(row: dict) -> dict:
    return {"psnr": row.get("val_psnr"), "ssim": row.get("val_ssim"), "sam": row.get("val_sam"),
            "bicubic_psnr": row.get("bicubic_psnr"), "data_range": 1.0}


def _epoch_line(row: dict, epochs: int) -> str:
    text = f"Epoch {row['epoch']:g}/{epochs}: train L1 {row['train_loss']:.5f}, lr {row['lr']:.3g}"
    if row.get("val_psnr") is not None:
        ssim = "n/a" if row["val_ssim"] is None else f"{row['val_ssim']:.4f}"
        text += (f", validation PSNR {row['val_psnr']:.3f} dB (bicubic {row['bicubic_psnr']:.3f}), "
                 f"SSIM {ssim}, SAM {row['val_sam']:.3f} deg")
    return text + f", {row['seconds']:.0f} s."


# --- checkpoints ------------------------------------------------------------------------------

def _rng_state(torch) -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, words, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
             "python": {"version": int(version), "words": list(words), "gauss": gauss}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(torch, state: dict):
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["words"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_checkpoint(torch, path: Path, signature, model, optimizer, scheduler, state: dict):
    payload = {"format": CHECKPOINT_FORMAT, "signature": json.dumps(signature, sort_keys=True),
               "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
               "rng": _rng_state(torch), **state}
    with atomic_path(path, parameter="the checkpoint") as tmp:
        torch.save(payload, tmp)


def _publish(staged: Path, final: Path) -> None:
    """Copy a finished file from the work folder to its destination, atomically."""
    with atomic_path(final, parameter="OUTPUT_WEIGHTS") as tmp:
        shutil.copyfile(staged, tmp)


def _load_checkpoint(torch, path: Path, signature, model, optimizer, scheduler) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise InputError(f"Checkpoint '{path}' cannot be read ({exc.__class__.__name__}). Delete it to start "
                         "training afresh.") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"'{path}' is not a DualSR training checkpoint. Delete it or choose another workdir.")
    saved = json.loads(payload["signature"])
    wanted = json.loads(json.dumps(signature, sort_keys=True))
    differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differ:
        detail = ", ".join(f"{k} {saved.get(k)!r} there, {wanted.get(k)!r} now" for k in differ[:4])
        raise InputError(f"Checkpoint '{path}' belongs to a run with other settings ({detail}). Rerun with those "
                         "settings to resume, or delete the checkpoint (or choose another workdir) to start afresh.")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    _set_rng_state(torch, payload["rng"])
    return {k: payload[k] for k in ("epoch", "batch", "iteration", "loss_sum", "loss_count", "best", "history",
                                    "seconds")}


# --- reports ----------------------------------------------------------------------------------

def _write_csv(path: Path, history: list[dict]):
    with atomic_path(path, parameter="the training log") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in CSV_FIELDS})


def _write_curve(path: Path, history: list[dict]):
    """Training loss and validation PSNR against epochs, as a PNG (matplotlib's Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(9, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    loss_ax, psnr_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="train L1")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("L1 loss")
    loss_ax.set_yscale("log")
    loss_ax.grid(True, alpha=0.3)
    if any(r.get("val_psnr") is not None for r in history):
        psnr_ax.plot(epochs, [r.get("val_psnr") or np.nan for r in history], "o-", label="CoarSR")
        psnr_ax.plot(epochs, [r.get("bicubic_psnr") or np.nan for r in history], "--", label="bicubic")
        psnr_ax.legend()
    psnr_ax.set_xlabel("epoch")
    psnr_ax.set_ylabel("validation PSNR (dB)")
    psnr_ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, parameter="the training curve") as tmp:
        fig.savefig(tmp, format="png")
