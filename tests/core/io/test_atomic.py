"""The atomic-output mechanism: refused destinations, clean failures, swept leftovers."""
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from dualsr_core.errors import InputError
from dualsr_core.io import atomic
from dualsr_core.io.atomic import atomic_path, refuse_inputs, sweep_stale, temporary_name

from ...conftest import write_raster


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@contextmanager
def small_tmpfs(folder: Path, size: str = "200k", options: str = ""):
    """A tiny file system at `folder` (root only): a full disk or, with 'ro', a read-only one."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_success_replaces_the_destination_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "report.csv"
    target.write_text("old\n")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".report") and tmp.suffix == ".csv"
        tmp.write_text("new\n")
        assert target.read_text() == "old\n"  # nothing visible before the end
    assert target.read_text() == "new\n"
    assert listing(tmp_path) == ["report.csv"]


def test_failure_keeps_the_earlier_file_byte_for_byte(tmp_path):
    target = tmp_path / "out.tif"
    target.write_bytes(b"earlier result")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert target.read_bytes() == b"earlier result"
    assert listing(tmp_path) == ["out.tif"]


def test_verify_failure_discards(tmp_path):
    def reject(path):
        raise InputError("incomplete")

    with pytest.raises(InputError, match="incomplete"):
        with atomic_path(tmp_path / "a.txt", verify=reject) as tmp:
            tmp.write_text("x")
    assert listing(tmp_path) == []


def write_envi(path: Path, header: str) -> Path:
    """A 2-band ENVI raster at `path` whose header is named `header` (GDAL reads scene.hdr and scene.img.hdr)."""
    with rasterio.open(path, "w", driver="ENVI", width=4, height=4, count=2, dtype="float32", crs="EPSG:32633",
                       transform=from_origin(0, 120, 30, 30)) as dataset:
        dataset.write(np.ones((2, 4, 4), "float32"))
    path.with_suffix(".hdr").rename(path.parent / header)
    return path


def gdalbuildvrt(vrt: Path, source: Path) -> Path:
    """A VRT of `source`, which it names relative to itself as gdalbuildvrt does when given relative paths."""
    vrt.parent.mkdir(exist_ok=True)
    subprocess.run(["gdalbuildvrt", "-q", vrt.name, os.path.relpath(source, vrt.parent)], cwd=vrt.parent, check=True)
    return vrt


def refused_untouched(destination: Path, source: Path, message: str):
    """Assert that writing `destination` from `source` is refused with `message` and changes no file."""
    folder = destination.parent
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match=message):
        with atomic_path(destination, inputs=[("INPUT", source)], with_sidecars=True) as tmp:
            tmp.write_bytes(b"result")
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("destination, source, message", [
    ("in.tif", "in.tif", "OUTPUT '.*in.tif' is INPUT '.*in.tif'"),
    ("in.tif.aux.xml", "in.tif", "OUTPUT '.*in.tif.aux.xml' would also write '.*in.tif.aux.xml.aux.xml'|"
                                 "OUTPUT '.*in.tif.aux.xml' is a file of INPUT '.*in.tif'"),
])
def test_inputs_and_their_files_are_refused(tmp_path, destination, source, message):
    src = write_raster(tmp_path / source, np.ones((2, 4, 4), np.float32))
    (tmp_path / "in.tif.aux.xml").write_text("<PAMDataset/>")
    refused_untouched(tmp_path / destination, src, message)


@pytest.mark.parametrize("header", ["scene.hdr", "scene.img.hdr"])
@pytest.mark.parametrize("destination", ["scene.bsq", "scene.img.img"])
def test_every_envi_header_name_is_an_inputs_file(tmp_path, header, destination):
    """GDAL opens scene.img with scene.hdr, else scene.img.hdr: writing either header it would read is refused."""
    src = write_envi(tmp_path / "scene.img", header)
    written = Path(destination).with_suffix(".hdr").name
    if written == "scene.img.hdr" and header == "scene.hdr":  # GDAL keeps reading scene.hdr
        refuse_inputs(tmp_path / destination, [("INPUT", src)])
    else:
        refused_untouched(tmp_path / destination, src,
                          f"OUTPUT '.*{destination}' would also write '.*{written}', a file of INPUT '.*scene.img'")


@pytest.mark.parametrize("chain", [1, 2])
def test_the_files_a_vrt_reads_are_inputs(tmp_path, chain):
    """gdalbuildvrt view.vrt scene.tif (and a VRT of that VRT): scene.tif and view.vrt are the input too."""
    scene = write_raster(tmp_path / "scene.tif", np.ones((2, 4, 4), np.float32))
    views = [gdalbuildvrt(tmp_path / "view1.vrt", scene)]
    if chain == 2:
        views.append(gdalbuildvrt(tmp_path / "sub" / "view2.vrt", views[0]))
    refused_untouched(tmp_path / "scene.tif", views[-1],
                      f"OUTPUT '.*scene.tif' is a file of INPUT '.*view{chain}.vrt'; inputs are never overwritten")
    for file in [*views[:-1], scene.with_suffix(".qml")]:
        refused_untouched(file, views[-1], f"OUTPUT '.*{file.name}' is a file of INPUT '.*view{chain}.vrt'")
    refuse_inputs(tmp_path / "other.tif", [("INPUT", views[-1])])


def test_no_output_may_take_an_inputs_style(tmp_path):
    src = write_raster(tmp_path / "scene.tif", np.ones((2, 4, 4), np.float32))
    with pytest.raises(InputError, match="OUTPUT '.*scene.img' would also write '.*scene.qml', a file of INPUT"):
        refuse_inputs(tmp_path / "scene.img", [("INPUT", src)], styled=True)  # no scene.qml yet: its own
    (tmp_path / "scene.qml").write_text("<qgis/>")
    with pytest.raises(InputError, match="OUTPUT '.*scene.img' would also write '.*scene.qml', a file of INPUT"):
        refuse_inputs(tmp_path / "scene.img", [("INPUT", src)], styled=True)
    # A plot, table or weights file named like the style (Evaluate's OUTPUT_PLOT, Train's OUTPUT_WEIGHTS).
    with pytest.raises(InputError, match="OUTPUT_PLOT '.*scene.qml' is a file of REFERENCE '.*scene.tif'"):
        refuse_inputs(tmp_path / "scene.qml", [("REFERENCE", src)], "OUTPUT_PLOT")
    refuse_inputs(tmp_path / "scene.pt", [("INPUT", src)])  # weights or a table: no style written
    refuse_inputs(tmp_path / "other.img", [("INPUT", src)], styled=True)


def test_a_hard_link_or_symlink_to_an_input_is_the_input(tmp_path):
    src = tmp_path / "in.tif"
    src.write_bytes(b"raster")
    os.link(src, tmp_path / "hard.tif")
    (tmp_path / "soft.tif").symlink_to(src)
    for name in ("hard.tif", "soft.tif"):
        with pytest.raises(InputError, match="choose another file name for OUTPUT"):
            refuse_inputs(tmp_path / name, [("INPUT", src)])
    refuse_inputs(tmp_path / "other.tif", [("INPUT", src), ("COARSE", None), ("X", "NETCDF:a.nc:v")])


def test_leftovers_of_a_dead_process_are_swept_and_a_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    mine = temporary_name(tmp_path / "live.tif")
    mine.write_bytes(b"in progress")
    stale_file = Path(str(mine).replace(f"-{os.getpid()}-", f"-{dead_pid}-"))
    stale_file.write_bytes(b"killed")
    stale_folder = tmp_path / f".out-fine{atomic.TEMP_MARK}{atomic._HOST}-{dead_pid}-7"
    (stale_folder / "inner").mkdir(parents=True)
    other_host = tmp_path / f".x{atomic.TEMP_MARK}otherhost-{dead_pid}-1.tif"
    other_host.write_bytes(b"a run on another machine of a shared file system")
    (tmp_path / "result.tif").write_bytes(b"keep")
    lines = []
    removed = sweep_stale(tmp_path, lines.append)
    assert sorted(p.name for p in removed) == sorted([stale_file.name, stale_folder.name])
    assert listing(tmp_path) == sorted([mine.name, other_host.name, "result.tif"])
    assert lines == [f"Removed 1 temporary file and 1 work folder left by an interrupted earlier run in {tmp_path}: "
                     f"{', '.join(p.name for p in removed)}"]
    stale_folder.mkdir()
    sweep_stale(tmp_path, lines.append)
    assert lines[-1].startswith("Removed 1 work folder left by")  # not "1 temporary file(s)" for a folder


def test_a_folder_as_destination_and_an_unwritable_folder(tmp_path):
    with pytest.raises(InputError, match="is a folder; give a file name"):
        with atomic_path(tmp_path):
            pass
    with pytest.raises(InputError, match=r"^OUTPUT '/proc/dualsr.tif' could not be written: .*; choose"):
        with atomic_path("/proc/dualsr.tif"):
            pass


@pytest.mark.parametrize("name, driver, size", [
    ("out.tif", None, "200k"), ("out.img", None, "200k"),
    ("out.tif", "COG", "200k"),  # the GeoTIFF the COG is made from fails
    ("out.tif", "COG", "700k"),  # the GeoTIFF fits, its COG copy does not
])
def test_full_disk_is_an_error_and_the_earlier_raster_survives(tmp_path, name, driver, size):
    from dualsr_core.io.raster import RasterReader, RasterWriter

    noise = np.random.default_rng(0).integers(0, 10000, (16, 64, 64), dtype=np.uint16)  # incompressible
    src = write_raster(tmp_path / "in.tif", noise)
    with small_tmpfs(tmp_path / "small", size) as folder:
        earlier = folder / "out.tif"
        earlier.write_bytes(b"an earlier good output")
        with RasterReader(src) as reader, pytest.raises(InputError, match=f"^OUTPUT '{folder / name}' could not be "
                                                                          "written: the disk is full"):
            with RasterWriter(folder / name, reader, 2, driver=driver) as writer:
                result = np.random.default_rng(1).random((16, 128, 128), dtype=np.float32)  # 512 KiB encoded
                writer.write(result, np.ones(result.shape, bool), 0, 0)
        assert listing(folder) == ["out.tif"] and earlier.read_bytes() == b"an earlier good output"


def test_read_only_folder_says_so_and_cleans_up_nothing_it_cannot(tmp_path):
    with small_tmpfs(tmp_path / "ro", options=",ro") as folder:
        with pytest.raises(InputError, match="read-only file system; choose another folder"):
            with atomic_path(folder / "out.csv") as tmp:
                tmp.write_text("x")


def test_a_failed_run_removes_the_empty_folders_it_created(tmp_path):
    from dualsr_core.io.atomic import folders_removed_on_failure, prepare_folder

    (tmp_path / "kept").mkdir()
    with pytest.raises(InputError, match="later failure"):
        with folders_removed_on_failure():
            prepare_folder(tmp_path / "kept" / "a" / "b" / "out.tif")
            prepare_folder(tmp_path / "other" / "out.csv")
            (tmp_path / "other" / "earlier.csv").write_text("x")  # not empty: stays
            raise InputError("a later failure")
    assert listing(tmp_path) == ["kept", "other"] and listing(tmp_path / "kept") == []
    with folders_removed_on_failure():  # success keeps them
        prepare_folder(tmp_path / "kept" / "a" / "out.tif")
    assert listing(tmp_path / "kept") == ["a"]
