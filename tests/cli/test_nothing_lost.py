"""Nothing lost, through qgis_process: inputs are never overwritten, failed writes fail loudly and
leave an earlier output as it was, killed runs leave nothing the next run does not clean."""
import hashlib
import os
import pickle
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from ..conftest import smooth_cube, write_raster
from ..core.io.test_atomic import gdalbuildvrt, small_tmpfs, write_envi
from .conftest import QGIS_PROCESS, failed_with, qgis_process

pytestmark = pytest.mark.qgis
if QGIS_PROCESS is None:
    pytest.skip("qgis_process is not installed", allow_module_level=True)

WAVELENGTHS = [450 + 20 * b for b in range(16)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def run(env, algorithm, **parameters):
    return qgis_process(env, "run", f"dualsr:{algorithm}", "--", *(f"{k}={v}" for k, v in parameters.items()))


@pytest.fixture
def scene(tmp_path):
    return write_raster(tmp_path / "scene.tif", (smooth_cube(16, 24, 24) * 10000).astype(np.uint16),
                        nodata=0, wavelengths_nm=WAVELENGTHS)


@pytest.mark.parametrize("algorithm, parameter", [("coarse", "OUTPUT"), ("dualsr", "OUTPUT"), ("degrade", "OUTPUT"),
                                                  ("fine", "COARSE"), ("evaluate", "OUTPUT_CSV")])
def test_an_input_is_never_the_output(qgis_env, tmp_path, scene, tiny_weights, algorithm, parameter):
    before = {p.name: sha256(p) for p in tmp_path.iterdir() if not p.name.endswith(".aux.xml")}
    if algorithm == "fine":  # OUTPUT = COARSE: U would be replaced by its own refinement
        coarse = tmp_path / "u.tif"
        assert run(qgis_env, "coarse", INPUT=scene, SCALE=2, WEIGHTS=tiny_weights[2], OUTPUT=coarse).returncode == 0
        before = {p.name: sha256(p) for p in tmp_path.iterdir() if not p.name.endswith(".aux.xml")}
        result = run(qgis_env, "fine", INPUT=scene, SCALE=2, COARSE=coarse, OUTPUT=coarse)
        expected = f"OUTPUT '{coarse}' is COARSE"
    elif algorithm == "evaluate":
        result = run(qgis_env, "evaluate", REFERENCE=scene, RESULT=scene, OUTPUT_CSV=scene)
        expected = f"OUTPUT_CSV '{scene}' is REFERENCE"
    else:
        extra = {"WEIGHTS": tiny_weights[2]} if algorithm != "degrade" else {}
        result = run(qgis_env, algorithm, INPUT=scene, SCALE=2, OUTPUT=scene, **extra)
        expected = f"OUTPUT '{scene}' is INPUT"
    stderr = failed_with(result, expected)
    assert "inputs are never overwritten" in stderr
    # Every file is as it was; QGIS itself may cache an input's histogram in its .aux.xml on loading it.
    assert {p.name: sha256(p) for p in tmp_path.iterdir() if not p.name.endswith(".aux.xml")} == before


@pytest.mark.parametrize("algorithm, name, cog", [("coarse", "out.tif", False), ("coarse", "out.img", False),
                                                   ("coarse", "out.tif", True), ("dualsr", "out.tif", False)])
def test_a_full_disk_fails_and_keeps_the_earlier_output(qgis_env, tmp_path, tiny_weights, algorithm, name, cog):
    """DualSR's coarse result, written in a work folder beside OUTPUT, fails first: the message names OUTPUT."""
    noise = np.random.default_rng(0).integers(1, 10000, (16, 64, 64), dtype=np.uint16)  # incompressible
    src = write_raster(tmp_path / "in.tif", noise)
    with small_tmpfs(tmp_path / "small") as folder:
        earlier = folder / name
        earlier.write_bytes(b"an earlier good output")
        result = run(qgis_env, algorithm, INPUT=src, SCALE=2, WEIGHTS=tiny_weights[2], COG=cog, OUTPUT=earlier)
        failed_with(result, f"OUTPUT '{earlier}' could not be written: the disk is full")
        assert listing(folder) == [name] and earlier.read_bytes() == b"an earlier good output"


@pytest.mark.parametrize("folder, reason", [
    ("/proc/dualsr", "OUTPUT '/proc/dualsr/o.tif' could not be written: the folder does not exist and cannot be "),
    ("/proc", "OUTPUT '/proc/o.tif' could not be written: its folder takes no new files"),
    ("scene.qml", "OUTPUT '{tmp}/scene.qml/o.tif' could not be written: '{tmp}/scene.qml' is a file, not a folder"),
    ("scene.qml/deeper", "could not be written: '{tmp}/scene.qml' is a file, not a folder; choose another path."),
    ("read-only", "read-only file system; choose another folder"),
])
def test_unwritable_destinations_are_one_sentence(qgis_env, tmp_path, scene, tiny_weights, folder, reason):
    scene.with_suffix(".qml").write_text("<qgis>the user's style</qgis>")
    before = files(tmp_path)
    if folder == "read-only":
        with small_tmpfs(tmp_path / "ro", options=",ro") as mount:
            result = run(qgis_env, "coarse", INPUT=scene, SCALE=2, WEIGHTS=tiny_weights[2], OUTPUT=mount / "o.tif")
    else:
        output = Path(folder if folder.startswith("/") else tmp_path / folder) / "o.tif"
        result = run(qgis_env, "coarse", INPUT=scene, SCALE=2, WEIGHTS=tiny_weights[2], OUTPUT=output)
    failed_with(result, reason.format(tmp=tmp_path))
    assert files(tmp_path) == before


def start_killable(env, algorithm, **parameters):
    return subprocess.Popen([QGIS_PROCESS, "run", f"dualsr:{algorithm}", "--",
                             *(f"{k}={v}" for k, v in parameters.items())],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_when(process, appeared, timeout=600):
    """SIGKILL `process` as soon as `appeared()` is true (the run is mid-way)."""
    deadline = time.monotonic() + timeout
    while not appeared():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run never reached the point to kill it"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".dualsr-tmp-" in p.name]


@pytest.mark.parametrize("algorithm", ["coarse", "dualsr"])
def test_a_killed_run_is_cleaned_by_the_next(qgis_env, tmp_path, tiny_weights, algorithm):
    src = write_raster(tmp_path / "in.tif", smooth_cube(16, 48, 48), wavelengths_nm=WAVELENGTHS)
    out = tmp_path / "out.tif"
    options = dict(INPUT=src, SCALE=2, WEIGHTS=tiny_weights[2], TILE_SIZE=40, SCHEDULE="band", OUTPUT=out)
    kill_when(start_killable(qgis_env, algorithm, **options), lambda: temporaries(tmp_path))
    assert not out.exists() and temporaries(tmp_path)
    rerun = run(qgis_env, algorithm, **options)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "left by an interrupted earlier run" in rerun.stdout
    # the destination and its sidecars; QGIS may cache the input's histogram in in.tif.aux.xml
    assert set(listing(tmp_path)) <= {"in.tif", "in.tif.aux.xml", "out.tif", "out.tif.aux.xml", "out.qml"}
    with rasterio.open(out) as ds:
        assert ds.read().shape == (16, 96, 96)


def test_a_killed_training_leaves_its_checkpoint_and_no_weights(qgis_env, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    write_raster(scenes / "a.tif", smooth_cube(12, 32, 32), wavelengths_nm=WAVELENGTHS[:12])
    weights = tmp_path / "w.pt"
    options = dict(FOLDER=scenes, SCALE=2, EPOCHS=2, BATCH_SIZE=4, PATCH_SIZE=8, FEATURES=8, DEVICE="cpu",
                   OUTPUT_WEIGHTS=weights)
    checkpoint = tmp_path / "w.work" / "checkpoint.pt"
    kill_when(start_killable(qgis_env, "train", **options), checkpoint.exists)
    assert listing(tmp_path) == ["scenes", "w.work"]  # no finished-looking weights file
    rerun = run(qgis_env, "train", DELETE_WORK="true", **options)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Resuming from" in rerun.stdout and "Removed the work folder" in rerun.stdout
    assert listing(tmp_path) == ["scenes", "w.csv", "w.json", "w.pt", "w_curve.png"]


def test_a_failed_training_leaves_no_work_folder(qgis_env, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    write_raster(scenes / "tiny.tif", smooth_cube(6, 8, 8))  # smaller than one training patch
    result = run(qgis_env, "train", FOLDER=scenes, SCALE=2, PATCH_SIZE=16, OUTPUT_WEIGHTS=tmp_path / "w.pt")
    failed_with(result, "No training patches")
    assert listing(tmp_path) == ["scenes"]


class Payload:
    """Unpickling it creates the file `marker`: proof that code in a weights file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_weights_errors_name_the_problem(qgis_env, tmp_path, scene, tiny_weights):
    torch = pytest.importorskip("torch")
    random_bytes = tmp_path / "random.pt"
    random_bytes.write_bytes(os.urandom(4096))
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Payload(tmp_path / "pwned")))
    for path in (random_bytes, evil):
        stderr = failed_with(run(qgis_env, "coarse", INPUT=scene, SCALE=2, WEIGHTS=path, OUTPUT=tmp_path / "o.tif"),
                             f"WEIGHTS file '{path}' is not a DualSR weights file")
        # our message never suggests weights_only=False (torch may warn about weights_only on its own)
        assert all("weights_only" not in line for line in stderr.splitlines() if "WEIGHTS file" in line)
    assert not (tmp_path / "pwned").exists()
    payload = torch.load(tiny_weights[2], weights_only=True)
    state = payload["state_dict"]
    state["extra.weight"] = state.pop(next(iter(state)))
    from dualsr_core.network.weights import state_sha256

    payload["header"]["sha256"] = state_sha256(state)
    renamed = tmp_path / "renamed.pt"
    torch.save(payload, renamed)
    stderr = failed_with(run(qgis_env, "coarse", INPUT=scene, SCALE=2, WEIGHTS=renamed, OUTPUT=tmp_path / "o.tif"),
                         "1 missing key(s) (")
    assert "1 unexpected key(s) (extra.weight)" in stderr


def test_fine_checks_reference_weights_before_any_stage(qgis_env, tmp_path, scene, tiny_weights):
    result = run(qgis_env, "dualsr", INPUT=scene, SCALE=4, WEIGHTS=tiny_weights[4], REFERENCE_WEIGHTS=tiny_weights[3],
                 OUTPUT=tmp_path / "o.tif")
    failed_with(result, f"REFERENCE_WEIGHTS file '{tiny_weights[3]}' was trained for scale x3 but the reference of "
                        "SCALE 4 is made at x2. Choose REFERENCE_WEIGHTS trained for x2, or leave it empty for the "
                        "bundled x2 weights.")
    assert "running DualSR Coarse" not in result.stdout


@pytest.mark.parametrize("damage, message", [
    ("scale", "has an unreadable header: scale is 'two', not a whole number"),
    ("header", "is a torch file but not a DualSR weights file (its header or state dict is not a table of names)"),
    ("state", "is a torch file but not a DualSR weights file (its header or state dict is not a table of names)"),
])
def test_a_malformed_weights_file_is_one_sentence(qgis_env, tmp_path, scene, tiny_weights, damage, message):
    torch = pytest.importorskip("torch")
    payload = torch.load(tiny_weights[2], weights_only=True)
    if damage == "scale":
        payload["header"]["scale"] = "two"  # the sha256 still matches: only the header is wrong
    elif damage == "header":
        payload["header"] = list(payload["header"].items())
    else:
        payload["state_dict"] = list(payload["state_dict"].values())
    malformed = tmp_path / "malformed.pt"
    torch.save(payload, malformed)
    before = files(tmp_path)
    stderr = failed_with(run(qgis_env, "coarse", INPUT=scene, SCALE=2, WEIGHTS=malformed, OUTPUT=tmp_path / "o.tif"),
                         f"WEIGHTS file '{malformed}' {message}")
    assert stderr.count(message) == 1
    assert files(tmp_path) == before


@pytest.mark.parametrize("name, expected", [
    ("notes.txt", "is not a raster GDAL can read"),
    ("empty.tif", "is an empty (0-byte) file, not a raster"),
    ("folder", "is a folder; choose a raster file"),
    ("missing.tif", "does not exist"),
])
def test_unreadable_inputs_are_told_apart(qgis_env, tmp_path, name, expected):
    path = tmp_path / name
    if name == "notes.txt":
        path.write_text("hello")
    elif name == "empty.tif":
        path.touch()
    elif name == "folder":
        path.mkdir()
    failed_with(run(qgis_env, "coarse", INPUT=path, SCALE=2, OUTPUT=tmp_path / "o.tif"), f"INPUT '{path}' {expected}")


def test_bands_that_do_not_exist_are_named(qgis_env, tmp_path, tiny_weights):
    src = write_raster(tmp_path / "in.tif", smooth_cube(12, 8, 8))
    failed_with(run(qgis_env, "coarse", INPUT=src, SCALE=2, BANDS="3,15", WEIGHTS=tiny_weights[2],
                    OUTPUT=tmp_path / "o.tif"), "BANDS 15 do not exist: INPUT has 12 bands.")


def test_empty_bands_mean_all_and_text_is_one_sentence(qgis_env, tmp_path, tiny_weights):
    src = write_raster(tmp_path / "in.tif", smooth_cube(6, 8, 8))
    out = tmp_path / "o.tif"
    result = run(qgis_env, "coarse", INPUT=src, SCALE=2, BANDS="", WEIGHTS=tiny_weights[2], OUTPUT=out)
    assert result.returncode == 0, result.stdout + result.stderr
    with rasterio.open(out) as ds:
        assert (ds.count, ds.width) == (6, 16)
    failed_with(run(qgis_env, "coarse", INPUT=src, SCALE=2, BANDS="abc", WEIGHTS=tiny_weights[2],
                    OUTPUT=tmp_path / "p.tif"),
                "BANDS is 'abc'; give band numbers separated by commas, such as 1,5,9, or leave it empty for all "
                "bands.")
    assert not (tmp_path / "p.tif").exists()


@pytest.mark.parametrize("algorithm, given, message", [
    ("coarse", {"OVERLAP": 9999}, "OVERLAP is 9999 but must be a whole number from 0 to 512."),
    ("coarse", {"TILE_SIZE": 2}, "TILE_SIZE is 2 but must be a whole number from 8 to 4096."),
    ("coarse", {"SCALE": 5}, "SCALE is '5' but must be one of 2, 3, 4, 8."),
    ("train", {"LEARNING_RATE": 5}, "LEARNING_RATE is 5 but must be a number from 1e-07 to 1."),
    ("train", {"INPUT": "notes.txt"}, "INPUT '{folder}/notes.txt' is not a raster GDAL can read"),
])
def test_a_value_out_of_range_says_the_range(qgis_env, tmp_path, algorithm, given, message):
    src = write_raster(tmp_path / "in.tif", smooth_cube(6, 8, 8))
    (tmp_path / "notes.txt").write_text("hello")
    parameters = {"INPUT": src, "SCALE": 2, "OUTPUT" if algorithm == "coarse" else "OUTPUT_WEIGHTS": tmp_path / "o"}
    parameters.update({key: tmp_path / value if value == "notes.txt" else value for key, value in given.items()})
    before = files(tmp_path)
    stderr = failed_with(run(qgis_env, algorithm, **parameters), message.format(folder=tmp_path))
    assert "Incorrect parameter value" not in stderr
    assert files(tmp_path) == before


def test_a_container_input_names_a_line_that_makes_a_usable_input(qgis_env, tmp_path, tiny_weights):
    h5py = pytest.importorskip("h5py")
    container = tmp_path / "scene.h5"
    with h5py.File(container, "w") as f:
        f["a_cube"] = smooth_cube(6, 8, 8)
        f["mask"] = np.ones((8, 8), np.uint8)
    stderr = failed_with(run(qgis_env, "coarse", INPUT=container, SCALE=2, WEIGHTS=tiny_weights[2],
                             OUTPUT=tmp_path / "o.tif"),
                         f"INPUT '{container}' is a container of 2 subdatasets (a_cube, mask), which QGIS does not "
                         "open as a raster layer: make a VRT of the one to use, e.g. gdal_translate -of VRT")
    line = re.search(r"e\.g\. (gdal_translate .*?), and give that VRT as INPUT\.", stderr)[1]
    vrt = tmp_path / "scene_a_cube.vrt"
    subdataset = f'HDF5:"{container}"://a_cube'
    assert line == f"gdal_translate -of VRT '{subdataset}' '{vrt}'"
    direct = run(qgis_env, "coarse", INPUT=subdataset, SCALE=2, WEIGHTS=tiny_weights[2], OUTPUT=tmp_path / "d.tif")
    if direct.returncode != 0:  # QGIS 3.22 does not load a subdataset as a layer; 3.40 does, and runs it
        failed_with(direct, f"INPUT '{subdataset}' is a GDAL subdataset, which QGIS does not load as a layer: make a "
                            f"VRT of it with {line} and give that VRT as INPUT.")
    subprocess.run(shlex.split(line), check=True, capture_output=True)
    result = run(qgis_env, "coarse", INPUT=vrt, SCALE=2, WEIGHTS=tiny_weights[2], OUTPUT=tmp_path / "o.tif")
    assert result.returncode == 0, result.stdout + result.stderr
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert (ds.count, ds.width, ds.height) == (6, 16, 16)
        through_vrt = ds.read()
    if direct.returncode == 0:
        with rasterio.open(tmp_path / "d.tif") as ds:
            np.testing.assert_array_equal(ds.read(), through_vrt)


def test_extent_errors_are_in_qgis_order_and_plain_numbers(qgis_env, tmp_path, scene, tiny_weights):
    with rasterio.open(scene) as ds:
        west, south, east, north = (f"{v:.6f}".rstrip("0").rstrip(".") for v in ds.bounds)
    result = run(qgis_env, "coarse", INPUT=scene, SCALE=2, WEIGHTS=tiny_weights[2], OUTPUT=tmp_path / "o.tif",
                 EXTENT="300000,300100,5000000,5000100 [EPSG:32633]")
    failed_with(result, "EXTENT 300000,300100,5000000,5000100 (xmin,xmax,ymin,ymax in the raster's CRS) does not "
                        f"overlap INPUT, which covers {west},{east},{south},{north}.")
    no_crs = write_raster(tmp_path / "no_crs.tif", smooth_cube(4, 8, 8), crs=None)
    result = run(qgis_env, "coarse", INPUT=no_crs, SCALE=2, WEIGHTS=tiny_weights[2], OUTPUT=tmp_path / "o.tif",
                 EXTENT="0,1,0,1 [EPSG:4326]")
    failed_with(result, "EXTENT is given in EPSG:4326 but INPUT has no CRS to place it in; assign INPUT a CRS, or "
                        "give EXTENT in the raster's own coordinates without a CRS.")
    assert not (tmp_path / "o.tif").exists()


def test_without_gdal_pam_a_run_leaves_its_input_folder_as_it_was(qgis_env, tmp_path, scene):
    """What the README says of QGIS's own .aux.xml: GDAL_PAM_ENABLED=NO keeps it from being written."""
    before = {p.name: sha256(p) for p in tmp_path.iterdir()}
    low = tmp_path / "low" / "low.tif"
    result = qgis_process(dict(qgis_env, GDAL_PAM_ENABLED="NO"), "run", "dualsr:degrade", "--", f"INPUT={scene}",
                          "SCALE=2", f"OUTPUT={low}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p.name: sha256(p) for p in tmp_path.iterdir() if p.is_file()} == before


def test_a_failed_run_removes_the_folders_it_created(qgis_env, tmp_path, scene, tiny_weights):
    output = tmp_path / "new" / "deeper" / "o.tif"
    result = run(qgis_env, "coarse", INPUT=scene, SCALE=2, WEIGHTS=tiny_weights[3], OUTPUT=output)
    failed_with(result, f"WEIGHTS file '{tiny_weights[3]}' was trained for scale x3 but SCALE is x2")
    assert not (tmp_path / "new").exists()
    (tmp_path / "new").mkdir()  # a folder that was there before the run stays
    result = run(qgis_env, "coarse", INPUT=scene, SCALE=2, WEIGHTS=tiny_weights[3], OUTPUT=output)
    assert result.returncode != 0 and (tmp_path / "new").is_dir() and not (tmp_path / "new" / "deeper").exists()


def test_a_raster_without_georeferencing_is_warned_about_once_and_never_by_rasterio(qgis_env, tmp_path, tiny_weights):
    src = tmp_path / "plain.tif"
    with rasterio.open(src, "w", driver="GTiff", width=8, height=8, count=6, dtype="float32") as ds:
        ds.write(smooth_cube(6, 8, 8))
    result = run(qgis_env, "dualsr", INPUT=src, SCALE=2, WEIGHTS=tiny_weights[2], OUTPUT=tmp_path / "o.tif")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NotGeoreferencedWarning" not in result.stdout + result.stderr
    assert result.stdout.count("INPUT has no coordinate reference system") == 1


def test_envi_header_names_the_output(qgis_env, tmp_path, scene, tiny_weights):
    out = tmp_path / "result.img"
    assert run(qgis_env, "coarse", INPUT=scene, SCALE=2, WEIGHTS=tiny_weights[2], OUTPUT=out).returncode == 0
    header = (tmp_path / "result.hdr").read_text()
    assert "dualsr-tmp" not in header and "result.img" in header


def files(folder: Path) -> dict[str, str]:
    """Every file under `folder` and its sha256, without the .aux.xml QGIS itself may cache an input's
    histogram in on loading it; of a VRT, whose statistics QGIS writes into the VRT itself, the
    files it reads."""
    def content(path: Path) -> str:
        if path.suffix == ".vrt":
            return " ".join(re.findall(r"<SourceFilename[^>]*>([^<]*)<", path.read_text()))
        return sha256(path)

    return {str(p.relative_to(folder)): content(p) for p in folder.rglob("*")
            if p.is_file() and not p.name.endswith(".aux.xml")}


@pytest.mark.parametrize("chain", [1, 2])
def test_the_file_a_vrt_reads_is_an_input(qgis_env, tmp_path, scene, tiny_weights, chain):
    """gdalbuildvrt view1.vrt scene.tif (and view2.vrt of view1.vrt), then INPUT=the view, OUTPUT=scene.tif."""
    view = gdalbuildvrt(tmp_path / "view1.vrt", scene)
    if chain == 2:
        view = gdalbuildvrt(tmp_path / "views" / "view2.vrt", view)
    before = files(tmp_path)
    for target in (scene, tmp_path / "view1.vrt")[:chain]:
        result = run(qgis_env, "coarse", INPUT=view, SCALE=2, WEIGHTS=tiny_weights[2], OUTPUT=target)
        failed_with(result, f"OUTPUT '{target}' is a file of INPUT '{view}'; inputs are never overwritten")
    assert files(tmp_path) == before


@pytest.mark.parametrize("header, output", [("scene.img.hdr", "scene.img.img"), ("scene.img.hdr", "scene.bsq"),
                                            ("scene.hdr", "scene.bsq")])
def test_every_envi_header_name_of_an_input_is_kept(qgis_env, tmp_path, tiny_weights, header, output):
    """scene.img with its header as scene.hdr or scene.img.hdr: an output whose header GDAL would read
    for the input (scene.hdr first, else scene.img.hdr) is refused."""
    src = write_envi(tmp_path / "scene.img", header)
    before = files(tmp_path)
    result = run(qgis_env, "coarse", INPUT=src, SCALE=2, WEIGHTS=tiny_weights[2], OUTPUT=tmp_path / output)
    written = Path(output).with_suffix(".hdr").name
    failed_with(result, f"OUTPUT '{tmp_path / output}' would also write '{tmp_path / written}', a file of INPUT "
                        f"'{src}'")
    assert files(tmp_path) == before


def test_an_inputs_style_is_an_input_of_evaluate_and_train(qgis_env, tmp_path, scene):
    style = scene.with_suffix(".qml")
    style.write_text("<qgis>the user's style</qgis>")
    before = files(tmp_path)
    evaluate = run(qgis_env, "evaluate", REFERENCE=scene, RESULT=scene, OUTPUT_CSV=tmp_path / "m.csv",
                   OUTPUT_PLOT=style)
    failed_with(evaluate, f"OUTPUT_PLOT '{style}' is a file of REFERENCE '{scene}'; inputs are never overwritten")
    failed_with(run(qgis_env, "train", FOLDER=tmp_path, SCALE=2, EPOCHS=1, OUTPUT_WEIGHTS=style),
                f"OUTPUT_WEIGHTS '{style}' is a file of a training scene '{scene}'; inputs are never overwritten")
    assert files(tmp_path) == before
