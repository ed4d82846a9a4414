"""The batch command on real Dask clusters of 2 worker processes, against one-process runs of
super_resolve with the same pinned options (fp32, schedule 'band'): outputs, a worker killed
mid-scene, a rerun, stripes, a bad input."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (make setup installs it)")
rasterio = pytest.importorskip("rasterio")

from dualsr_core.batch.runner import auto_stripe_rows, find_inputs, output_path, plan_stripes  # noqa: E402
from dualsr_core.tools.tiling import Region, network_cells, plan_network_tiles  # noqa: E402

from ...conftest import smooth_cube, write_raster  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
TILE = 40  # reads of 40 pixels: cores of 8 between edge cores of 24 with the tiny networks' 16 of overlap
PINNED = dict(tile_size=TILE, precision="fp32", schedule="band", device="cpu")
SIZES = [(32, 32), (32, 48), (48, 32), (32, 40), (40, 32), (48, 48)]  # (rows, cols) of the 6 scenes
BANDS = 6
TEMP = re.compile(r"\.dualsr-tmp-")


def write_scene(path: Path, rows: int, cols: int, seed: int, bands: int = BANDS) -> Path:
    cube = (smooth_cube(bands, rows, cols, seed=seed) * 10000).astype("uint16")
    # Blue to red or beyond, so that every output gets its true-colour style.
    return write_raster(path, cube, nodata=0, wavelengths_nm=[420.0 + 45.0 * b for b in range(bands)])


def reference(source: Path, target: Path, weights: Path, **options) -> np.ndarray:
    """The one-process run: super_resolve in this process, on one core like a worker (torch takes the
    cores it may use; one thread is much faster than two on a busy 2-core machine, and the result
    does not depend on it)."""
    from dualsr_core.stages.coarse import super_resolve

    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(cores)[:1])
    try:
        super_resolve(source, target, 2, weights=weights, **{**PINNED, **options})
    finally:
        os.sched_setaffinity(0, cores)
    with rasterio.open(target) as ds:
        return ds.read()


def read(path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def batch_command(inputs, output: Path, weights: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "dualsr_core", "batch", "--input", *map(str, inputs), "--output", str(output),
            "--scale", "2", "--weights", str(weights), "--tile-size", str(TILE), "--precision", "fp32",
            "--schedule", "band", "--device", "cpu", *extra]


def run(command, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, **kwargs)


def manifest_of(output: Path) -> dict:
    data = json.loads((output / "manifest.json").read_text())
    return {Path(r["input"]).name: r for r in data["scenes"]}


def leftovers(folder: Path) -> list[str]:
    """Anything in an output folder but the outputs and the manifest (temporary files, work folders)."""
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or TEMP.search(p.name))


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, tiny_weights):
    """Six small uint16 scenes and their one-process results."""
    folder = tmp_path_factory.mktemp("scenes")
    inputs = folder / "in"
    inputs.mkdir()
    paths = [write_scene(inputs / f"scene{k}.tif", rows, cols, seed=k) for k, (rows, cols) in enumerate(SIZES)]
    expected = {p.name: reference(p, folder / f"ref_{p.name}", tiny_weights[2]) for p in paths}
    return inputs, paths, expected, tiny_weights[2]


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes (with nannies, so a killed worker is
    replaced), warmed up: torch and dualsr_core imported on both."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)

    def warm():
        sys.path.insert(0, str(ROOT))
        import torch  # noqa: F401

        import dualsr_core.stages.coarse  # noqa: F401
        return os.getpid()

    client.run(warm)
    yield cluster, client
    client.close()
    cluster.close()


def test_two_local_workers_equal_one_process_runs_and_a_rerun_skips_everything(scenes, tmp_path):
    inputs, paths, expected, weights = scenes
    output = tmp_path / "out"
    done = run(batch_command([inputs], output, weights, "--workers", "2"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Local cluster: 2 worker process(es)" in done.stdout and "Dashboard: http://" in done.stdout
    assert re.search(r"scenes 6/6, .* elapsed, done", done.stderr)  # the progress bar
    records = manifest_of(output)
    assert sorted(records) == sorted(p.name for p in paths)
    for path in paths:
        record = records[path.name]
        target = output / f"{path.stem}_x2.tif"
        assert record["status"] == "done" and record["output"] == str(target.resolve())
        assert record["device"].startswith("cpu (1 thread(s)), fp32") and record["worker"].startswith("tcp://")
        assert record["seconds"] > 0 and record["error"] is None
        np.testing.assert_array_equal(read(target), expected[path.name])
        import hashlib

        assert record["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert len({r["worker"] for r in records.values()}) == 2
    assert leftovers(output) == []

    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in output.glob("*.tif")}
    again = run(batch_command([inputs], output, weights, "--workers", "2"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 done, 6 skipped, 0 failed" in again.stdout and "Local cluster" not in again.stdout
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in output.glob("*.tif")} == before
    assert {r["status"] for r in manifest_of(output).values()} == {"skipped"}


def test_a_worker_killed_mid_scene_is_replaced_and_its_scene_retried(scenes, cluster, tmp_path):
    inputs, paths, expected, weights = scenes
    local, client = cluster
    output = tmp_path / "out"
    output.mkdir()
    killed = []

    def kill_first_writer():
        """SIGKILL the worker whose temporary output appears first (its name carries the pid)."""
        deadline = time.monotonic() + 600
        workers = set(client.run(os.getpid).values())
        while time.monotonic() < deadline and not killed:
            for entry in output.iterdir():
                match = re.search(r"\.dualsr-tmp-[A-Za-z0-9]+-(\d+)-", entry.name)
                if match and int(match[1]) in workers:
                    os.kill(int(match[1]), signal.SIGKILL)
                    killed.append((entry.name, int(match[1])))
                    return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_first_writer)
    killer.start()
    done = run(batch_command([inputs], output, weights, "--scheduler", local.scheduler_address))
    killer.join()
    assert killed, "no worker was caught writing"
    assert done.returncode == 0, done.stderr[-3000:]
    records = manifest_of(output)
    for path in paths:
        assert records[path.name]["status"] == "done"
        np.testing.assert_array_equal(read(output / f"{path.stem}_x2.tif"), expected[path.name])
    name, pid = killed[0]
    assert not any(f"(pid {pid})" in r["worker"] for r in records.values())  # retried elsewhere
    assert leftovers(output) == []
    # The nanny replaces the killed worker; under heavy load the LocalCluster has been seen to close
    # that nanny instead, so the test cluster is scaled back to 2 for the tests that follow.
    local.scale(2)
    client.wait_for_workers(2, timeout=300)

    before = {p: p.read_bytes() for p in output.glob("*.tif")}
    again = run(batch_command([inputs], output, weights, "--scheduler", local.scheduler_address))
    assert again.returncode == 0 and "0 done, 6 skipped, 0 failed" in again.stdout, again.stderr[-3000:]
    assert {p: p.read_bytes() for p in output.glob("*.tif")} == before

    damaged = output / f"{paths[0].stem}_x2.tif"
    damaged.write_bytes(before[damaged][:-100])  # no longer the recorded sha256: computed again
    third = run(batch_command([inputs], output, weights, "--scheduler", local.scheduler_address))
    assert third.returncode == 0 and "1 done, 5 skipped, 0 failed" in third.stdout, third.stderr[-3000:]
    np.testing.assert_array_equal(read(damaged), expected[paths[0].name])


def test_a_scene_in_stripes_across_two_workers_equals_the_one_process_run(scenes, cluster, tmp_path):
    _, _, _, weights = scenes
    local, _ = cluster
    source = write_scene(tmp_path / "tall.tif", 72, 40, seed=7, bands=8)
    expected = reference(source, tmp_path / "ref.tif", weights, output_float=True)
    output = tmp_path / "out"
    done = run(batch_command([source], output, weights, "--scheduler", local.scheduler_address, "--stripe-rows",
                             "20", "--output-float"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tall.tif: 4 stripes of up to 24 rows." in done.stdout  # about 20 rows, cut between core rows
    record = manifest_of(output)["tall.tif"]
    assert record["status"] == "done" and record["stripes"] == 4 and len(record["stripe_workers"]) == 2
    result = read(output / "tall_x2.tif")
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, expected)  # bit for bit
    with rasterio.open(output / "tall_x2.tif") as ours, rasterio.open(tmp_path / "ref.tif") as theirs:
        assert ours.transform == theirs.transform and ours.crs == theirs.crs
        assert [ours.tags(b) for b in ours.indexes] == [theirs.tags(b) for b in theirs.indexes]
    assert (output / "tall_x2.qml").read_text() == (tmp_path / "ref.qml").read_text()  # styled like a whole run
    assert leftovers(output) == [] and sorted(p.name for p in output.iterdir()) == [
        "manifest.json", "tall_x2.qml", "tall_x2.tif"]


def test_dualsr_in_stripes_equals_the_one_process_run(scenes, cluster, tmp_path, tiny_weights):
    """x4: the coarse stages U (x4) and V (x2) in stripes on both workers, then Fine once."""
    from dualsr_core.stages.fine import refine

    local, _ = cluster
    source = write_scene(tmp_path / "scene.tif", 72, 32, seed=9)
    refine(source, tmp_path / "ref.tif", 4, weights=tiny_weights[4], reference_weights=tiny_weights[2], **PINNED)
    output = tmp_path / "out"
    command = batch_command([source], output, tiny_weights[4], "--scheduler", local.scheduler_address,
                            "--stripe-rows", "16", "--method", "dualsr", "--reference-weights", str(tiny_weights[2]))
    command[command.index("--scale") + 1] = "4"
    done = run(command)
    assert done.returncode == 0, done.stderr[-3000:]
    record = manifest_of(output)["scene.tif"]
    assert record["status"] == "done" and record["stripes"] == 10  # 5 of U and 5 of V, each in whole rows of its tiles
    np.testing.assert_array_equal(read(output / "scene_x4.tif"), read(tmp_path / "ref.tif"))
    assert leftovers(output) == []


def test_a_bad_scene_fails_alone_and_the_exit_status_says_so(scenes, cluster, tmp_path):
    inputs, paths, expected, weights = scenes
    local, _ = cluster
    folder = tmp_path / "in"
    folder.mkdir()
    for path in paths[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.tif").write_text("this is a text file, not a raster\n")
    output = tmp_path / "out"
    done = run(batch_command([folder], output, weights, "--scheduler", local.scheduler_address))
    assert done.returncode == 1
    assert "2 done, 0 skipped, 1 failed" in done.stdout
    records = manifest_of(output)
    bad = records["broken.tif"]
    assert bad["status"] == "failed" and "broken.tif" in bad["error"] and "not a raster GDAL can read" in bad["error"]
    assert bad["sha256"] is None and not (output / "broken_x2.tif").exists()
    for path in paths[:2]:
        assert records[path.name]["status"] == "done"
        np.testing.assert_array_equal(read(output / f"{path.stem}_x2.tif"), expected[path.name])
    again = run(batch_command([folder], output, weights, "--scheduler", local.scheduler_address))
    assert again.returncode == 1 and "0 done, 2 skipped, 1 failed" in again.stdout  # only the bad one tried


def test_stripes_hold_exactly_the_tiles_of_a_whole_run():
    height, width, overlap = 100, 37, 5
    whole = plan_network_tiles(Region(0, 0, height, width), height, width, TILE, overlap)  # as Coarse
    cells = network_cells(height, TILE, overlap)
    assert cells == [(0, 35), (35, 30), (65, 35)]
    assert plan_stripes(cells, 20) == plan_stripes(cells, 30) == cells  # at most one stripe per core row
    assert plan_stripes(cells, 50) == [(0, 35), (35, 65)] and plan_stripes(cells, 70) == [(0, 100)]
    for rows in (20, 50):
        pieces = [t for row0, stripe in plan_stripes(cells, rows)
                  for t in plan_network_tiles(Region(row0, 0, stripe, width), height, width, TILE, overlap)]
        assert pieces == whole  # same read windows (overlap beyond the stripe) and cores


def test_automatic_stripes_only_for_scenes_above_one_workers_share():
    cells = network_cells(100, TILE, 5)  # three core rows
    assert auto_stripe_rows(100, cells, share=300) == 0
    assert auto_stripe_rows(600, cells, share=300) == 50  # two stripes of about 50 rows
    assert auto_stripe_rows(600, [(0, 100)], share=300) == 0  # one core row cannot be split
    default = network_cells(2048, 256, 16)  # 240, seven of 224, 240
    for pieces in (2, 3, 4, 9):  # a stripe per worker: as many stripes as pieces asked
        rows = auto_stripe_rows(2048 * 8, default, share=2048 * 8 / pieces)
        assert len(plan_stripes(default, rows)) == pieces, pieces
    assert auto_stripe_rows(600, cells, share=0) == 0  # one worker: no point


def test_an_output_may_not_take_another_scenes_style(tmp_path):
    """a.tif's output a_x2.tif would write a_x2.qml, the style QGIS opens the input a_x2.img with."""
    from dualsr_core.batch.runner import run_batch
    from dualsr_core.errors import InputError

    for name in ("a.tif", "a_x2.img", "a_x2.hdr"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(InputError,
                       match="an output '.*a_x2.tif' would also write '.*a_x2.qml', a file of an input '.*a_x2.img'"):
        run_batch([str(tmp_path / "a.tif"), str(tmp_path / "a_x2.img")], tmp_path, scale=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "a_x2.hdr", "a_x2.img"]


def test_inputs_are_found_recursively_without_outputs_or_hidden_files(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/x.tif", "a/deep/y.img", "a/notes.txt", "a/.hidden.tif"):
        (tmp_path / name).write_bytes(b"")
    out = tmp_path / "a" / "out"
    out.mkdir()
    (out / "x_x2.tif").write_bytes(b"")
    found = find_inputs([tmp_path / "a"], out)
    assert [rel.as_posix() for _, rel in found] == ["deep/y.img", "x.tif"]
    assert output_path(out, Path("deep/y.img"), 4, "ENVI") == out / "deep" / "y_x4.img"
