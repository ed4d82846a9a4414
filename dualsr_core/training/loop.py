"""The training loop: epochs of mini-batches, validation, checkpoints, the best weights.

Adam (betas 0.9, 0.999, eps 1e-8, no weight decay); the learning rate is halved every
max(1, epochs // 3) epochs (StepLR stepped at the end of an epoch), which replaces the
reference's undocumented x0.1 milestones (docs/method.md D5) by the README's "halving" with a period that
scales with the run. Everything random is seeded, and the batch order of an epoch is a pure
function of (seed, epoch), so a run resumed from any checkpoint ends with bit-identical weights.

Several processes: launched with torchrun (WORLD_SIZE > 1), the band stepper is wrapped in
DistributedDataParallel (nccl on CUDA, gloo on the CPU); every process takes its share of each
batch (so all step through the same scene together) and only rank 0 writes files and validates.

Only reached after `require_torch()`.
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import Cancelled, InputError
from ..feedback import Feedback
from ..io.scenes import load_scene
from ..network import partition, weights
from ..network.torch_support import select_device, usable_cores
from ..tools import resize
from ..tools.tiling import Region
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .patches import PatchDataset, region_tuple, validation_crop
from .report import epoch_line, metrics_of, publish, split_text, write_csv, write_curve
from .step import BandStepper, OptimisationStep, auto_chunk, band_window, initial_model

PAPER = ("Q. Li, Y. Yuan, X. Jia, Q. Wang, Dual-Stage Approach Toward Hyperspectral Image Super-Resolution, "
         "IEEE TIP 31, 2022")


@dataclass
class TrainingScenes:
    """The scenes of a run by name, and its validation windows.

    Attributes:
        names: the training scenes' names (`scenes.scene_names`).
        windows: explicit validation windows as (resolved path, Region).
        named_windows: the same windows as (scene name, Region).
        extra_names: validation scenes outside the training data, path -> name.
        auto_fraction: the held-out fraction of each scene when there are no explicit windows.
    """

    names: list[str]
    windows: list[tuple[Path, Region]]
    named_windows: list[tuple[str, Region]]
    extra_names: dict[Path, str]
    auto_fraction: float


class Distributed:
    """Process group facts; a single process when WORLD_SIZE is unset or 1."""

    def __init__(self, device: str):
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

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.group is not None:
            self.group.barrier()

    def any(self, flag: bool) -> bool:
        """True on every process if `flag` is True on any."""
        if self.group is None:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        self.group.all_reduce(t)
        return bool(t.item() > 0)

    def mean(self, value: float) -> float:
        if self.group is None:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        self.group.all_reduce(t)
        return float(t.item()) / self.world_size


def validate(model, items: list[dict], device: torch.device) -> dict:
    """Validation metrics (means over the windows) of the model run as inference runs it: a folded
    copy in the inference engine, fp32, the SR not clamped (as the reference's train.py).

    The engine's schedule is fixed to 'band': 'auto' picks one by timing, and the two schedules
    differ in the last bits (measured: 24.224035089 against 24.224034930 dB), so metrics, and with
    them the choice of the best epoch, would depend on the machine's load."""
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
    engine = CoarseEngine(fold_weight_norm(folded), device, precision="fp32", schedule="band")
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


def extra_validation(config: TrainConfig, scenes: TrainingScenes, feedback: Feedback) -> list[dict]:
    """Crops of validation windows on scenes that are not training scenes (loaded here)."""
    items, loaded = [], {}
    for path, region in scenes.windows:
        if path not in scenes.extra_names:
            continue
        if path not in loaded:
            loaded[path] = load_scene(path, scenes.extra_names[path])
        scene = loaded[path]
        crop = validation_crop(scene, region, config.scale)
        items.append({"name": scene.name, "region": region, **crop, "good_bands": scene.good_bands,
                      "order": scene.order})
    if items:
        feedback.log(f"{len(items)} validation window(s) on scenes outside the training data.")
    return items


def run(config: TrainConfig, dist: Distributed, dataset: PatchDataset, scenes: TrainingScenes, files: dict,
        feedback: Feedback) -> dict:
    """Train on the patches of `dataset` (resuming from the checkpoint in `files` if there is one) and
    publish the best weights, the CSV and the curve at `files` once the run ends as asked."""
    cfg, device, is_main = config, dist.device, dist.is_main
    if len(dataset) == 0:
        raise InputError(f"No training patches: every scene is smaller than the HR patch side "
                         f"{cfg.patch_size * cfg.scale} px (PATCH_SIZE {cfg.patch_size} x SCALE {cfg.scale}) "
                         "outside its validation window and nodata. Use a smaller PATCH_SIZE or larger scenes.")
    validation = dataset.validation() + extra_validation(cfg, scenes, feedback) if is_main else []
    if is_main and not validation:
        feedback.warn("No validation data: the weights of the last epoch are saved, without metrics.")

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    model, source = initial_model(cfg, feedback)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, cfg.epochs // 3), gamma=0.5)
    signature = {"scale": cfg.scale, **model.config.as_dict(), "epochs": cfg.epochs, "batch_size": cfg.batch_size,
                 "patch_size": cfg.patch_size, "lr": cfg.lr, "seed": cfg.seed, "band_steps": cfg.band_steps,
                 "band_chunk": cfg.band_chunk, "scenes": scenes.names, "world_size": dist.world_size,
                 "zero_last": bool(cfg.zero_last) and not cfg.resume_from, "band_window": cfg.band_window,
                 "validation": [[n, *region_tuple(r)] for n, r in scenes.named_windows],
                 "val_fraction": scenes.auto_fraction}
    if cfg.spectral_weight:  # absent at 0, so checkpoints of runs made before the term still resume
        signature["spectral_weight"] = cfg.spectral_weight
    if cfg.positions_per_kilopixel is not None:  # likewise for runs made before area sampling
        signature["positions_per_kilopixel"] = cfg.positions_per_kilopixel
    state = {"epoch": 0, "batch": 0, "iteration": 0, "loss_sum": 0.0, "loss_count": 0, "best": None,
             "history": [], "seconds": 0.0}
    checkpoint = files["CHECKPOINT"]
    # Written in the work folder while training runs; a killed run leaves no finished-looking file.
    staged = {key: checkpoint.parent / files[key].name for key in ("OUTPUT_WEIGHTS", "CSV", "CURVE")}
    if checkpoint.is_file():
        state = load_checkpoint(checkpoint, signature, model, optimizer, scheduler)
        feedback.log(f"Resuming from {checkpoint}: epoch {state['epoch'] + 1}, batch {state['batch']}, "
                     f"{state['iteration']} mini-batches done.")
    elapsed_before = state["seconds"]
    clock = time.perf_counter()

    stepper = BandStepper(model)
    ddp = None
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(stepper, device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=True)
    step = OptimisationStep(stepper if ddp is None else ddp, ddp, optimizer, dataset.patch_size, cfg.scale, device,
                            cfg.band_steps, cfg.band_chunk or auto_chunk(device, cfg.batch_size, model.config.n_feats,
                                                                         dataset.patch_size), cfg.amp,
                            cfg.spectral_weight)
    n_batches, epochs, max_it = len(dataset), cfg.epochs, cfg.max_iterations
    total = epochs * n_batches if max_it is None else min(epochs * n_batches, max_it)
    header_base = {"training_data": ", ".join(scenes.names), "scenes": scenes.names, "paper": PAPER,
                   "normalization": "reflectance (band scale applied), no mean subtraction",
                   "split": split_text(validation, bool(scenes.named_windows), scenes.auto_fraction),
                   "band_steps": cfg.band_steps, "seed": cfg.seed,
                   "patch_size": cfg.patch_size, "batch_size": cfg.batch_size * dist.world_size,
                   "learning_rate": cfg.lr, "lr_schedule": f"halved every {max(1, epochs // 3)} epochs",
                   "epochs_planned": epochs, "initialised_from": source, "band_window": cfg.band_window,
                   "spectral_weight": cfg.spectral_weight, "dualsr_version": __version__,
                   "patch_sampling": (f"{cfg.positions_per_kilopixel:g} positions per 1000 trainable pixels"
                                      if cfg.positions_per_kilopixel is not None
                                      else f"{cfg.positions_per_scale} positions per rescaled copy"),
                   "training_precision": "bf16 autocast, fp32 weights" if step.amp else "fp32"}
    if is_main:
        feedback.log(f"{n_batches} mini-batches per epoch, {epochs} epoch(s), band steps '{cfg.band_steps}' "
                     f"({step.chunk} band(s) per pass), device {device}, "
                     f"{'bf16 autocast' if step.amp else 'fp32'}.")
        if cfg.amp and not step.amp:
            feedback.log("bf16 autocast was asked, but this CPU has no native bf16 (AVX512-BF16 or AMX), where "
                         "it is emulated and slower than fp32: training runs in fp32.")

    def seconds():
        return elapsed_before + time.perf_counter() - clock

    def checkpoint_now():
        if is_main:
            save_checkpoint(checkpoint, signature, model, optimizer, scheduler, {**state, "seconds": seconds()})

    stopped = False
    while state["epoch"] < epochs and not stopped:
        epoch = state["epoch"]
        tick, tick_it = time.perf_counter(), state["iteration"]
        for batch in dataset.iterate(epoch, start=state["batch"]):
            if max_it is not None and state["iteration"] >= max_it:
                stopped = True
                break
            if dist.any(feedback.is_cancelled()):
                checkpoint_now()
                dist.barrier()
                raise Cancelled(f"Training cancelled by user at epoch {epoch + 1}, batch {state['batch']}; "
                                f"rerun with the same settings to resume from {checkpoint}.")
            loss = dist.mean(step(batch, band_window(cfg, state["iteration"], len(batch.order))))
            state.update(batch=state["batch"] + 1, iteration=state["iteration"] + 1,
                         loss_sum=state["loss_sum"] + loss, loss_count=state["loss_count"] + 1)
            feedback.progress(min(1.0, 0.05 + 0.95 * state["iteration"] / total))
            if state["iteration"] % cfg.checkpoint_every == 0:
                checkpoint_now()
                rate = (state["iteration"] - tick_it) / (time.perf_counter() - tick)
                feedback.log(f"Epoch {epoch + 1}/{epochs}, batch {state['batch']}/{n_batches}: "
                             f"L1 {state['loss_sum'] / state['loss_count']:.5f}, {rate:.3g} mini-batches/s.")
        history = state["history"]
        if history and history[-1]["iteration"] == state["iteration"]:
            break  # this point was validated before (a rerun of a finished run)
        row = {"epoch": round(epoch + state["batch"] / n_batches, 4), "iteration": state["iteration"],
               "train_loss": state["loss_sum"] / max(1, state["loss_count"]), "lr": optimizer.param_groups[0]["lr"]}
        if is_main:
            row.update(validate(model, validation, device))
            row["seconds"] = seconds()
        history.append(row)
        if is_main and (not validation or state["best"] is None or row["val_psnr"] > state["best"]["val_psnr"]):
            state["best"] = dict(row)
            header = {**header_base, "epochs": row["epoch"], "iterations": row["iteration"],
                      "wall_seconds": row["seconds"], "validation": metrics_of(row)}
            weights.save(staged["OUTPUT_WEIGHTS"], model, header, half=cfg.half)
        if state["batch"] >= n_batches:
            scheduler.step()
            state.update(epoch=epoch + 1, batch=0, loss_sum=0.0, loss_count=0)
        if is_main:
            write_csv(staged["CSV"], history)
            write_curve(staged["CURVE"], history)
            feedback.log(epoch_line(row, epochs))
        checkpoint_now()
        dist.barrier()
    if is_main:  # the training ended as asked: only now do the weights and their reports appear
        for key, path in staged.items():
            publish(path, files[key])
        publish(staged["OUTPUT_WEIGHTS"].with_suffix(".json"), files["HEADER"])
    best = state["best"] or {}
    return {**{k: str(v) for k, v in files.items()}, "best": metrics_of(best) if best else None,
            "best_epoch": best.get("epoch"), "epochs_done": state["epoch"], "iterations": state["iteration"],
            "seconds": seconds(), "band_steps": cfg.band_steps, "device": str(device)}
