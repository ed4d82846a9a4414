"""A batch run: find the scenes, skip the complete ones, plan tasks, run them on Dask, keep the manifest.

Faults: a task that raises an unexpected exception is retried (`retries`); a worker process that
dies is replaced by its nanny and the scheduler runs its tasks again (up to
`distributed.scheduler.allowed-failures` worker deaths per task). Outputs are written atomically
by their writers; stripes live in a work folder, a scene's removed once its result is recorded and
the whole folder at the end; leftovers of killed workers are swept from the output folders on
every worker host. A bad input fails its scene only.
"""
from __future__ import annotations

import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import InputError
from ..feedback import Feedback
from ..io.atomic import ENVI_SUFFIXES, GDAL_SUFFIXES
from ..options import DEFAULT_TILE, DRIVERS, SCALES
from .manifest import NAME as MANIFEST_NAME
from .manifest import Manifest

METHODS = ("coarse", "dualsr")  # batch's own choices; the inference options' lists are in options.py
RASTER_SUFFIXES = (*GDAL_SUFFIXES, *ENVI_SUFFIXES)  # what a folder given as --input is searched for
SAVE_INTERVAL = 2.0  # seconds between two rewrites of the manifest (and at the end)
POLL_SECONDS = 0.5
AT_LEAST_1 = "{name} must be a whole number of at least 1 (got {value})."  # an option's check (tools/checks.py)


def find_inputs(items: list, output_dir: Path) -> list[tuple[Path, Path]]:
    """(input file, output path relative to OUTPUT) of every scene: files as given, folders searched
    recursively for rasters (hidden files and the output folder excluded), in sorted order."""
    found: dict[Path, Path] = {}
    output_dir = output_dir.resolve()
    for item in items:
        path = Path(item)
        if path.is_dir() and (path.resolve() == output_dir or output_dir in path.resolve().parents):
            raise InputError(f"--output '{output_dir}' is the --input folder '{item}' or holds it, so its scenes "
                             "would be taken for outputs; choose an --output folder outside the inputs.")
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path)
                if (file.is_file() and _is_input_file(file)
                        and not any(part.startswith(".") for part in relative.parts)
                        and output_dir not in file.resolve().parents):
                    found.setdefault(file.resolve(), relative)
        elif path.is_file():
            found.setdefault(path.resolve(), Path(path.name))
        else:
            raise InputError(f"--input '{item}' is neither a file nor a folder.")
    if not found:
        raise InputError(f"--input found no raster ({', '.join(RASTER_SUFFIXES)}) in {', '.join(map(str, items))}.")
    return list(found.items())


def _is_input_file(file: Path) -> bool:
    """A raster by its suffix, or a sensor product (an EnMAP or DESIS product once, through its
    METADATA.XML, not its images)."""
    from ..io.products import is_product_member, product_kind

    if product_kind(file) is not None:
        return True
    return file.suffix.lower() in RASTER_SUFFIXES and not is_product_member(file)


def output_path(output_dir: Path, relative: Path, scale: int, driver: str) -> Path:
    from ..io.products import output_stem

    suffix = ".img" if driver == "ENVI" else ".tif"
    return output_dir / relative.parent / f"{output_stem(relative)}_x{scale}{suffix}"


def _weights_file(weights, scale: int) -> Path:
    from ..network.weights import bundled_path

    return Path(weights) if weights else bundled_path(scale)


def options_signature(method, scale, weights, reference_weights, iterations, tile_size, overlap, precision,
                      schedule, band_chunk, output_float, bad_bands, driver) -> dict:
    """What decides the pixels of an output; the weights by the sha256 of their file."""
    from .tasks import file_sha256

    def weights_id(path: Path) -> str | None:
        return file_sha256(path) if path.is_file() else None

    signature = {"method": method, "scale": scale, "weights": weights_id(_weights_file(weights, scale)),
                 "tile_size": tile_size, "overlap": overlap, "precision": precision, "schedule": schedule,
                 "band_chunk": band_chunk, "output_float": output_float, "bad_bands": bad_bands, "format": driver}
    if method == "dualsr":
        signature["iterations"] = iterations
        if scale in (4, 8):
            signature["reference_weights"] = weights_id(_weights_file(reference_weights, scale // 2))
    return signature


def _check(method, scale, driver, tile_size, overlap, stripe_rows, iterations, band_chunk):
    from ..tools.checks import positive_integer  # here: the command line's start does not need numpy

    if method not in METHODS:
        raise InputError(f"--method is '{method}' but must be one of {', '.join(METHODS)}.")
    if scale not in SCALES:
        raise InputError(f"--scale is {scale} but must be one of {', '.join(map(str, SCALES))}.")
    if driver not in DRIVERS:
        raise InputError(f"--format is '{driver}' but must be one of {', '.join(DRIVERS)}.")
    positive_integer(tile_size, "--tile-size", InputError, message=AT_LEAST_1)
    if overlap is not None and overlap < 0:
        raise InputError(f"--overlap must be 0 or more (got {overlap}).")
    if stripe_rows is not None and stripe_rows < 0:
        raise InputError(f"--stripe-rows must be 0 (never split) or positive (got {stripe_rows}).")
    positive_integer(iterations, "--iterations", InputError, message=AT_LEAST_1)
    positive_integer(band_chunk, "--band-chunk", InputError, message=AT_LEAST_1)


def plan_stripes(cells: list[tuple[int, int]], rows: int) -> list[tuple[int, int]]:
    """(row0, rows) of stripes of about `rows` rows, made of whole core rows `cells`
    (tiling.network_cells), so that a stripe holds exactly the tiles of a one-process run: the
    height in about height / rows pieces (at most one per core row), cut at the core row boundaries
    nearest to equal parts."""
    height = sum(size for _, size in cells)
    pieces = min(len(cells), max(1, math.floor(height / rows + 0.5)))
    boundaries = [first for first, _ in cells[1:]]
    cuts = sorted({min(boundaries, key=lambda b: abs(b - k * height / pieces)) for k in range(1, pieces)})
    edges = [0, *cuts, height]
    return [(first, end - first) for first, end in zip(edges, edges[1:])]


def auto_stripe_rows(scene_work: float, cells: list[tuple[int, int]], share: float) -> int:
    """Rows per stripe when a scene is more than one worker's share of the run, else 0 (whole)."""
    if share <= 0 or scene_work <= share:
        return 0
    pieces = min(math.ceil(scene_work / share), len(cells))
    return 0 if pieces < 2 else math.ceil(sum(size for _, size in cells) / pieces)


def run_batch(inputs: list, output_dir, scale: int, method: str = "coarse", weights=None, reference_weights=None,
              iterations: int = 1, tile_size: int = DEFAULT_TILE, overlap: int | None = None, device: str = "auto",
              precision: str = "auto", schedule: str = "auto", band_chunk: int = 16, output_float: bool = False,
              bad_bands: str = "nodata", driver: str = "GTiff", workers: int | None = None,
              scheduler: str | None = None, stripe_rows: int | None = None, retries: int = 2,
              feedback: Feedback | None = None, progress_stream=None) -> dict:
    """Super-resolve every scene of `inputs` into `output_dir` on a Dask cluster.

    Args:
        inputs: raster files and/or folders (searched recursively).
        output_dir: where the outputs (`<name>_x<scale>.tif`, `.img` for ENVI) and manifest.json go;
            sub-folders of an input folder are mirrored.
        scale, method, weights, reference_weights, iterations: as `coarse.super_resolve` (method
            coarse) and `fine.refine` (method dualsr).
        tile_size, overlap, device, precision, schedule, band_chunk, output_float, bad_bands: the
            inference options; driver: 'GTiff', 'COG' or 'ENVI'.
        workers: LocalCluster workers (default: one per GPU, else per core within the memory).
        scheduler: address (or scheduler file) of a running cluster instead of a LocalCluster.
        stripe_rows: None: split a scene into row stripes when it is more than one worker's share
            of the run; 0: never; N: stripes of about N input rows (whole tile rows) for every
            scene taller than that.
        retries: Dask retries of a task that raised an unexpected error.
        feedback: log lines and cancel (progress goes to the progress bar).
        progress_stream: where the progress bar goes (default stderr).
    Returns:
        dict with done, skipped, failed, manifest, seconds (of the run), start_seconds (cluster
        start) and exit_code (0 when every scene is complete, else 1).
    """
    feedback = feedback or Feedback()
    _check(method, scale, driver, tile_size, overlap, stripe_rows, iterations, band_chunk)
    started = time.perf_counter()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    scenes = find_inputs(inputs, output_dir)
    by_output: dict[Path, Path] = {}
    for source, relative in scenes:
        target = output_path(output_dir, relative, scale, driver).resolve()
        if target in by_output:
            raise InputError(f"--input '{by_output[target]}' and '{source}' would both write '{target}'; "
                             "give them in separate runs or rename one.")
        by_output[target] = source
    from .cluster import require_dask

    require_dask()
    from ..io.atomic import files_of_input, files_written, refuse_inputs, sweep_stale
    from .tasks import file_sha256

    # An output may not be (or share a file with) another scene's input; each writer checks its own.
    input_files = {f.resolve(): source for source in by_output.values() for f in files_of_input(source)}
    for target in by_output:
        for file in files_written(target, True):
            if file in input_files:
                refuse_inputs(target, [input_files[file]], "an output", styled=True)
    from ..network.weights import check_weights, network_config

    # Checked once here, in the command line's names, rather than by every scene's task in QGIS's.
    headers = {scale: check_weights(weights, scale, "--weights", scale_name="--scale")[0]}
    if method == "dualsr" and scale in (4, 8):
        headers[scale // 2] = check_weights(reference_weights, scale // 2, "--reference-weights", reference_of=scale,
                                            scale_name="--scale")[0]
    # The overlap each network's tiles are read with (as Coarse resolves it): stripes are whole rows of tiles.
    tile_overlaps = {s: network_config(h).receptive_radius if overlap is None else overlap for s, h in headers.items()}
    signature = options_signature(method, scale, weights, reference_weights, iterations, tile_size, overlap,
                                  precision, schedule, band_chunk, output_float, bad_bands, driver)
    manifest = Manifest(output_dir / MANIFEST_NAME, signature)

    # Complete scenes are skipped (their sha256 checked in parallel); the others are probed here,
    # so that a bad input is reported without a worker and the stripes can be planned.
    todo, skipped, failed_early = [], 0, 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        earlier = list(pool.map(lambda t: manifest.complete(str(t), file_sha256), by_output))
    for (target, source), record in zip(by_output.items(), earlier):
        if record is not None:
            manifest.set(str(target), {**record, "input": str(source), "status": "skipped"})
            skipped += 1
            continue
        probe = _probe(source)
        if "error" in probe:
            feedback.log(f"Failed: {source}: {probe['error']}")
            manifest.set(str(target), {"input": str(source), "status": "failed", "error": probe["error"],
                                       "seconds": 0.0, "worker": None, "device": None, "sha256": None})
            failed_early += 1
            continue
        todo.append({"input": str(source), "output": str(target), **probe})
    manifest.save()
    feedback.log(f"{len(by_output)} scene(s): {len(todo)} to compute, {skipped} complete in the manifest "
                 f"(skipped), {failed_early} not readable. Manifest: {manifest.path}")
    summary = {"done": 0, "skipped": skipped, "failed": failed_early, "manifest": str(manifest.path),
               "seconds": 0.0, "start_seconds": 0.0}
    widest = max(tile_overlaps.values())
    if tile_size <= 2 * widest and any(max(s["height"], s["width"]) > tile_size for s in todo):
        raise InputError(f"--tile-size {tile_size} leaves no room for output inside the overlap of {widest} pixels "
                         f"on each side: give at least {2 * widest + 1}, or a smaller --overlap.")
    if todo:
        _compute(todo, manifest, summary, feedback, progress_stream, locals_of_run=dict(
            scale=scale, method=method, weights=str(weights) if weights else None,
            reference_weights=str(reference_weights) if reference_weights else None, iterations=iterations,
            tile_size=tile_size, overlap=overlap, device=device, precision=precision, schedule=schedule,
            band_chunk=band_chunk, output_float=output_float, bad_bands=bad_bands, driver=driver),
            workers=workers, scheduler=scheduler, stripe_rows=stripe_rows, tile_overlaps=tile_overlaps,
            retries=retries, output_dir=output_dir, sweep=sweep_stale)
    manifest.save()
    summary["exit_code"] = 0 if summary["failed"] == 0 else 1
    summary["total_seconds"] = time.perf_counter() - started
    feedback.log(f"{summary['done']} done, {summary['skipped']} skipped, {summary['failed']} failed "
                 f"in {summary['total_seconds']:.1f} s. Manifest: {manifest.path}")
    return summary


def _probe(path: Path) -> dict:
    """Height, width and bands of a raster, or the reason it cannot be read."""
    from ..errors import DualSRError
    from ..io.products import open_raster

    try:
        with open_raster(path, "--input") as reader:
            return {"height": reader.height, "width": reader.width, "bands": reader.count}
    except DualSRError as exc:
        return {"error": str(exc)}


def _compute(todo, manifest, summary, feedback, progress_stream, locals_of_run, workers, scheduler, stripe_rows,
             tile_overlaps, retries, output_dir, sweep):
    from ..tools.tiling import network_cells
    from . import tasks
    from .cluster import connect

    clock = time.perf_counter()
    connection = connect(scheduler, workers, locals_of_run["device"], feedback.log)
    client = connection.client
    summary["start_seconds"] = time.perf_counter() - clock
    try:
        feedback.log(connection.describe)
        dashboard = connection.dashboard
        if dashboard:
            feedback.log(f"Dashboard: {dashboard} (the graphical pages need the bokeh package)")
        n_workers = max(1, len(connection.workers()))
        use_gpu = locals_of_run["device"] != "cpu" and connection.gpu_workers() > 0
        resources = {"GPU": 1} if use_gpu else None
        if use_gpu:
            n_workers = connection.gpu_workers()
        token = uuid.uuid4().hex[:8]
        total_work = sum(s["height"] * s["width"] * s["bands"] for s in todo)
        share = total_work / n_workers if n_workers > 1 else 0.0
        from ..io.atomic import work_folder

        with work_folder(output_dir / "batch", "stripes") as work:
            finals, parts = {}, {}
            for index, scene in enumerate(sorted(todo, key=lambda s: -s["height"] * s["width"] * s["bands"])):
                work_units = scene["height"] * scene["width"] * scene["bands"]
                stem = Path(scene["output"]).stem
                job = {**locals_of_run, **scene, "key": f"dualsr-scene-{stem}-{token}-{index}",
                       "work": str(work / f"{index}-{stem}")}
                # Each coarse stage in whole rows of its own tiles (the x2 reference of x4 reads less overlap).
                stages = tasks.stages(job)
                cells = {stage["name"]: network_cells(scene["height"], locals_of_run["tile_size"],
                                                      tile_overlaps[stage["scale"]]) for stage in stages}
                first = stages[0]["name"]
                rows = stripe_rows if stripe_rows is not None else auto_stripe_rows(work_units, cells[first], share)
                plan = {name: plan_stripes(stage_cells, rows) if rows else [] for name, stage_cells in cells.items()}
                if len(plan[first]) < 2:
                    future = client.submit(tasks.run_scene, job, key=job["key"], retries=retries,
                                           resources=resources, priority=work_units, pure=False)
                    parts[future.key] = (future, scene["height"] * scene["width"], work_units)
                else:
                    stripe_futures = []
                    for stage in stages:
                        for k, (row0, height) in enumerate(plan[stage["name"]]):
                            key = f"dualsr-stripe-{stem}-{stage['name']}-{k}-{token}-{index}"
                            stripe = {"key": key, "row0": row0, "rows": height, "width": scene["width"],
                                      "scene_height": scene["height"],
                                      "path": str(Path(job["work"]) / f"{stage['name']}-{k:04d}.tif")}
                            future = client.submit(tasks.run_stripe, job, stage, stripe, key=key, retries=retries,
                                                   resources=resources, priority=work_units, pure=False)
                            share_of = height / scene["height"] / len(stages)
                            parts[key] = (future, scene["height"] * scene["width"] * share_of,
                                          work_units * share_of)
                            stripe_futures.append(future)
                    future = client.submit(tasks.assemble, job, stripe_futures, key=f"dualsr-assemble-{stem}-{token}-"
                                           f"{index}", retries=retries, priority=work_units, pure=False)
                    feedback.log(f"{Path(scene['input']).name}: {len(plan[first])} stripes of up to "
                                 f"{max(size for _, size in plan[first])} rows.")
                finals[future.key] = (future, {**scene, "work": job["work"]})
            _collect(client, finals, parts, manifest, summary, feedback, progress_stream)
        # Leftovers of killed workers (temporary files named after a dead process) on every host.
        folders = sorted({str(Path(s["output"]).parent) for s in todo})
        client.run(_sweep_all, folders, sweep)
        _sweep_all(folders, sweep)
    finally:
        connection.close()


def _sweep_all(folders, sweep):
    for folder in folders:
        sweep(folder)


def _collect(client, finals, parts, manifest, summary, feedback, progress_stream):
    """Wait for every scene, recording each in the manifest as it finishes; progress on the bar."""
    from ..io.atomic import remove_quietly
    from .progress import ProgressBar
    from .tasks import PROGRESS_TOPIC

    pixels = sum(scene["height"] * scene["width"] for _, scene in finals.values())
    work = sum(scene["height"] * scene["width"] * scene["bands"] for _, scene in finals.values())
    bar = ProgressBar(len(finals), pixels, work, progress_stream, skipped=summary["skipped"])
    running: dict[str, float] = {}

    def on_event(event):
        _, message = event
        if isinstance(message, dict) and message.get("key") in parts:
            running[message["key"]] = message["fraction"]

    client.subscribe_topic(PROGRESS_TOPIC, on_event)
    pending = {future for future, _ in finals.values()} | {future for future, _, _ in parts.values()}
    finished_parts: set[str] = set()
    last_save = time.perf_counter()
    try:
        while pending:
            if feedback.is_cancelled():
                client.cancel(list(pending))
                for future, scene in finals.values():
                    if future in pending:
                        manifest.set(scene["output"], {"input": scene["input"], "status": "failed",
                                                       "error": "cancelled by the user", "seconds": None,
                                                       "worker": None, "device": None, "sha256": None})
                        summary["failed"] += 1
                break
            done = {future for future in pending if future.done()}
            if not done:
                time.sleep(POLL_SECONDS)
            pending -= done
            scene_finished = False
            for future in done:
                if future.key in parts:
                    finished_parts.add(future.key)
                if future.key in finals:
                    _, scene = finals[future.key]
                    record = _result(future, scene)
                    remove_quietly(scene["work"])  # its stripes, if it had any: no retry needs them now
                    manifest.set(scene["output"], record)
                    failed = record["status"] != "done"
                    summary["failed" if failed else "done"] += 1
                    bar.scene(failed)
                    scene_finished = True
                    if failed:
                        feedback.log(f"Failed: {scene['input']}: {record['error']}")
            pixels_done = work_done = 0.0
            for key, (_, px, units) in parts.items():
                fraction = 1.0 if key in finished_parts else running.get(key, 0.0)
                pixels_done += px * fraction
                work_done += units * fraction
            bar.update(pixels_done, work_done, scene_finished)
            if scene_finished and time.perf_counter() - last_save >= SAVE_INTERVAL:
                manifest.save()
                last_save = time.perf_counter()
    finally:
        bar.close()
        client.unsubscribe_topic(PROGRESS_TOPIC)
    summary["seconds"] = time.perf_counter() - bar.started


def _result(future, scene) -> dict:
    """The manifest fields of a finished scene future; an exception (after retries, or a worker that
    died too often: KilledWorker) is the failure's reason."""
    base = {"input": scene["input"]}
    try:
        result = future.result()
    except Exception as exc:  # the task's own error after its retries, or KilledWorker
        return {**base, "status": "failed", "error": f"{type(exc).__name__}: {exc}".strip(), "seconds": None,
                "worker": None, "device": None, "sha256": None}
    return {**base, **result}

