"""What a training run tells: the CSV log, the training curve, log lines and the work-folder report.

Every file goes through the atomic-output mechanism; torch-free.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np

from ..feedback import Feedback
from ..io.atomic import atomic_path, remove_quietly

CSV_FIELDS = ("epoch", "iteration", "train_loss", "val_psnr", "val_ssim", "val_sam", "bicubic_psnr", "lr", "seconds")


def write_csv(path: Path, history: list[dict]) -> None:
    """The training log: one row per validation point, CSV_FIELDS (empty for no value)."""
    with atomic_path(path, parameter="the training log") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in CSV_FIELDS})


def write_curve(path: Path, history: list[dict]) -> None:
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


def publish(staged: Path, final: Path) -> None:
    """Copy a finished file from the work folder to its destination, atomically."""
    with atomic_path(final, parameter="OUTPUT_WEIGHTS") as tmp:
        shutil.copyfile(staged, tmp)


def metrics_of(row: dict) -> dict:
    """The validation metrics of a log row, as the weights header stores them."""
    return {"psnr": row.get("val_psnr"), "ssim": row.get("val_ssim"), "sam": row.get("val_sam"),
            "bicubic_psnr": row.get("bicubic_psnr"), "data_range": 1.0}


def epoch_line(row: dict, epochs: int) -> str:
    """The log line of a validation point."""
    text = f"Epoch {row['epoch']:g}/{epochs}: train L1 {row['train_loss']:.5f}, lr {row['lr']:.3g}"
    if row.get("val_psnr") is not None:
        ssim = "n/a" if row["val_ssim"] is None else f"{row['val_ssim']:.4f}"
        text += (f", validation PSNR {row['val_psnr']:.3f} dB (bicubic {row['bicubic_psnr']:.3f}), "
                 f"SSIM {ssim}, SAM {row['val_sam']:.3f} deg")
    return text + f", {row['seconds']:.0f} s."


def split_text(validation: list[dict], explicit: bool, auto_fraction: float) -> str:
    """The header's description of the validation split (items as `PatchDataset.validation()` gives)."""
    windows = "; ".join(f"{v['name']} rows {v['region'].row0}-{v['region'].row0 + v['region'].height - 1} "
                        f"cols {v['region'].col0}-{v['region'].col0 + v['region'].width - 1}" for v in validation)
    if not validation:
        return "no validation"
    how = "explicit windows" if explicit else f"automatic windows of about {auto_fraction:.0%} of each scene"
    return f"validation on held-out {how}, never sampled for training: {windows}"


def report_work_folder(workdir: Path, delete: bool, feedback: Feedback) -> None:
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
