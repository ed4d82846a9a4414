"""The work of a batch run on a Dask worker: a whole scene, a row stripe of one, or the assembly of
a scene's stripes.

A scene task runs `coarse.super_resolve` (method coarse) or `fine.refine` (method dualsr) onto
the final output, whose writer is atomic. A large scene may instead be cut into row stripes made
of whole rows of each coarse stage's cores (`tiling.network_cells`): a stripe runs `super_resolve`
on its rows only (region), and since tiles read their overlap (the network's receptive radius)
beyond the stripe, each stripe holds exactly the tiles of a one-process run. Stripes go to a work
folder; the assembly task copies their encoded pixels into the output through one atomic writer
(dualsr: into the coarse results U and V, on which it then runs Fine, which needs the whole image).

A bad input (a DualSRError: not a raster, wrong weights, ...) is returned as a failed record, so
it is neither retried nor stops the other scenes; any other exception is raised for Dask's
retries. This module is imported on the workers and only after `cluster.require_dask`.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path

from distributed import WorkerPlugin, get_worker

from ..errors import DualSRError
from ..feedback import Feedback

PROGRESS_TOPIC = "dualsr-progress"
PROGRESS_INTERVAL = 1.0  # seconds between two progress events of one task


class PinCores(WorkerPlugin):
    """Pin every thread of a local worker process to its set of cores (by worker name 0..n-1), so the
    torch threads of one worker (usable_cores: its affinity) do not compete with the others'."""

    def __init__(self, core_sets: list):
        self.core_sets = [list(cores) for cores in core_sets]

    def setup(self, worker):
        try:
            index = int(worker.name)
        except (TypeError, ValueError):
            return
        cores = self.core_sets[index % len(self.core_sets)]
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), cores)
            except OSError:
                pass


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * 2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _worker() -> str:
    try:
        return f"{get_worker().address} (pid {os.getpid()})"
    except ValueError:  # run outside a worker (tests, a synchronous scheduler)
        return f"local (pid {os.getpid()})"


def _claim_device(device: str) -> str:
    """Select this worker's GPU (several GPUs on a host: worker name modulo their count, or
    DUALSR_CUDA_DEVICE) in this thread, and describe the device the run will use."""
    from ..network.torch_support import select_device

    torch_device = select_device(device)
    if torch_device.type == "cuda":
        import torch

        index = os.environ.get("DUALSR_CUDA_DEVICE")
        if index is None:
            try:
                index = int(get_worker().name) % torch.cuda.device_count()
            except (ValueError, TypeError):
                index = 0
        torch.cuda.set_device(int(index))
        return f"cuda:{int(index)} ({torch.cuda.get_device_name(int(index))})"
    import torch

    return f"cpu ({torch.get_num_threads()} thread(s))"


def _progress_feedback(key: str) -> Feedback:
    """Feedback whose progress reaches the client as events of PROGRESS_TOPIC, at most once a second."""
    last = [0.0]

    def progress(fraction: float):
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL or fraction >= 1.0:
            last[0] = now
            try:
                get_worker().log_event(PROGRESS_TOPIC, {"key": key, "fraction": float(fraction)})
            except ValueError:
                pass

    return Feedback(progress=progress)


def _run_options(job: dict) -> dict:
    return {k: job[k] for k in ("tile_size", "overlap", "device", "precision", "schedule", "band_chunk",
                                "bad_bands")}


def _failed(job: dict, exc: Exception, started: float, worker: str, device: str = "") -> dict:
    return {"status": "failed", "error": str(exc), "seconds": round(time.perf_counter() - started, 3),
            "worker": worker, "device": device}


def run_scene(job: dict) -> dict:
    """Super-resolve one whole scene onto job['output']; returns its manifest fields."""
    started = time.perf_counter()
    worker, device = _worker(), ""
    try:
        device = _claim_device(job["device"])
        feedback = _progress_feedback(job["key"])
        if job["method"] == "coarse":
            from ..stages.coarse import super_resolve

            result = super_resolve(job["input"], job["output"], job["scale"], weights=job["weights"],
                                   output_float=job["output_float"], driver=job["driver"], feedback=feedback,
                                   **_run_options(job))
        else:
            from ..stages.fine import refine

            result = refine(job["input"], job["output"], job["scale"], weights=job["weights"],
                            reference_weights=job["reference_weights"], iterations=job["iterations"],
                            output_float=job["output_float"], driver=job["driver"], feedback=feedback,
                            **_run_options(job))
        device = f"{device}, {result['PRECISION']}"
        return {"status": "done", "seconds": round(time.perf_counter() - started, 3), "worker": worker,
                "device": device, "sha256": file_sha256(job["output"])}
    except DualSRError as exc:
        return _failed(job, exc, started, worker, device)


def stages(job: dict) -> list[dict]:
    """The coarse rasters a striped scene is made of: the output itself (coarse), or U and, at x4
    and x8, V (dualsr; float32 with NaN nodata, as `fine.refine` computes them)."""
    if job["method"] == "coarse":
        return [{"name": "output", "scale": job["scale"], "weights": job["weights"],
                 "output_float": job["output_float"], "nodata": "input"}]
    result = [{"name": "coarse", "scale": job["scale"], "weights": job["weights"], "output_float": True,
               "nodata": math.nan}]
    if job["scale"] in (4, 8):
        result.append({"name": "reference", "scale": job["scale"] // 2, "weights": job["reference_weights"],
                       "output_float": True, "nodata": math.nan})
    return result


def run_stripe(job: dict, stage: dict, stripe: dict) -> dict:
    """Super-resolve input rows stripe['row0'] .. +stripe['rows'] of a stage into stripe['path']."""
    from ..stages.coarse import super_resolve
    from ..tools.tiling import Region

    started = time.perf_counter()
    worker, device = _worker(), ""
    try:
        device = _claim_device(job["device"])
        Path(stripe["path"]).parent.mkdir(parents=True, exist_ok=True)
        result = super_resolve(job["input"], stripe["path"], stage["scale"], weights=stage["weights"],
                               region=Region(stripe["row0"], 0, stripe["rows"], stripe["width"]),
                               job_pixels=stripe["scene_height"] * stripe["width"],
                               output_float=stage["output_float"], output_nodata=stage["nodata"], driver="GTiff",
                               default_style=False, feedback=_progress_feedback(stripe["key"]),
                               **_run_options(job))
        return {"status": "done", "seconds": round(time.perf_counter() - started, 3), "worker": worker,
                "device": f"{device}, {result['PRECISION']}", **stripe, "stage": stage["name"]}
    except DualSRError as exc:
        return {**_failed(job, exc, started, worker, device), **stripe, "stage": stage["name"]}


def assemble(job: dict, stripes: list[dict]) -> dict:
    """Copy the stripes of each stage into one raster (coarse: the output), then (dualsr) run Fine;
    returns the scene's manifest fields."""
    from ..io.products import open_raster
    from ..io.style import write_default_style

    started = time.perf_counter()
    worker = _worker()
    failed = [s for s in stripes if s["status"] != "done"]
    devices = sorted({s["device"] for s in stripes})
    workers = sorted({s["worker"] for s in stripes})
    record = {"stripes": len(stripes), "stripe_workers": workers, "worker": ", ".join(workers),
              "device": "; ".join(devices)}
    if failed:
        return {**record, "status": "failed", "error": failed[0]["error"],
                "seconds": round(sum(s["seconds"] for s in stripes), 3)}
    try:
        targets = {}
        for stage in stages(job):
            mine = sorted((s for s in stripes if s["stage"] == stage["name"]), key=lambda s: s["row0"])
            target = Path(job["output"]) if stage["name"] == "output" else Path(job["work"]) / f"{stage['name']}.tif"
            with open_raster(job["input"]) as like:
                _copy_stripes(like, stage, mine, target, job["driver"] if stage["name"] == "output" else "GTiff")
            if stage["name"] == "output":
                write_default_style(target)  # as a whole-scene run writes it
            targets[stage["name"]] = target
        if job["method"] == "dualsr":
            from ..stages.fine import refine

            refine(job["input"], job["output"], job["scale"], coarse_path=targets["coarse"],
                   reference_path=targets.get("reference"), iterations=job["iterations"],
                   tile_size=job["tile_size"], output_float=job["output_float"], driver=job["driver"])
        # The stripes (and U, V) stay until the client has the result: a retry of this task after
        # a worker death reads them again. The client removes the scene's work folder.
        seconds = sum(s["seconds"] for s in stripes) + time.perf_counter() - started
        return {**record, "status": "done", "seconds": round(seconds, 3), "assembled_by": worker,
                "sha256": file_sha256(job["output"])}
    except DualSRError as exc:
        return {**record, **_failed(job, exc, started, record["worker"], record["device"])}


def _copy_stripes(like, stage: dict, stripes: list[dict], target: Path, driver: str):
    """Write the encoded pixels of consecutive stripes into one raster of the whole input grid."""
    from ..io.raster import RasterWriter

    with RasterWriter(target, like, stage["scale"], output_float=stage["output_float"], nodata=stage["nodata"],
                      driver=driver) as writer:
        for stripe in stripes:
            writer.copy_encoded(stripe["path"], stripe["row0"] * stage["scale"])
