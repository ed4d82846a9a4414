"""The batch command's argument checks, before any scene is read or dask is imported: one sentence
naming the command-line option."""
from __future__ import annotations

import re

import pytest

from dualsr_core.batch.runner import run_batch
from dualsr_core.errors import InputError, WeightsError
from dualsr_core.feedback import Feedback

from ...conftest import smooth_cube, write_raster


@pytest.mark.parametrize("bad, message", [
    (dict(scale=5), "--scale is 5 but must be one of 2, 3, 4, 8."),
    (dict(method="fine"), "--method is 'fine' but must be one of coarse, dualsr."),
    (dict(driver="PNG"), "--format is 'PNG' but must be one of GTiff, COG, ENVI."),
    (dict(tile_size=0), "--tile-size must be a whole number of at least 1 (got 0)."),
    (dict(tile_size=16.0), "--tile-size must be a whole number of at least 1 (got 16.0)."),
    (dict(iterations=0), "--iterations must be a whole number of at least 1 (got 0)."),
    (dict(band_chunk=0), "--band-chunk must be a whole number of at least 1 (got 0)."),
    (dict(stripe_rows=-1), "--stripe-rows must be 0 (never split) or positive (got -1)."),
    (dict(overlap=-2), "--overlap must be 0 or more (got -2)."),
])
def test_bad_options_are_refused_naming_the_option(tmp_path, bad, message):
    with pytest.raises(InputError) as info:
        run_batch([str(tmp_path / "missing.tif")], tmp_path / "out", **{"scale": 2, **bad})
    assert str(info.value) == message
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_an_output_folder_that_is_or_holds_the_input_folder_is_refused_as_such(tmp_path):
    (tmp_path / "in").mkdir()
    write_raster(tmp_path / "in" / "scene.tif", smooth_cube(2, 8, 8))
    before = sorted(tmp_path.rglob("*"))
    for output in (tmp_path / "in", tmp_path):
        with pytest.raises(InputError, match=re.escape(f"--output '{output}' is the --input folder "
                                                       f"'{tmp_path / 'in'}' or holds it, so its scenes would be "
                                                       "taken for outputs; choose an --output folder outside")):
            run_batch([str(tmp_path / "in")], output, scale=2)
    assert sorted(tmp_path.rglob("*")) == before


def test_weights_are_checked_before_any_scene_in_the_commands_own_names(tmp_path, tiny_weights):
    scene = write_raster(tmp_path / "scene.tif", smooth_cube(2, 8, 8))
    with pytest.raises(WeightsError, match=re.escape(f"--weights file '{tiny_weights[3]}' was trained for scale x3 but "
                                                   "--scale is x2. Choose --scale 3 or weights for x2.")):
        run_batch([str(scene)], tmp_path / "out", scale=2, weights=tiny_weights[3])
    with pytest.raises(WeightsError, match=re.escape(f"--reference-weights file '{tiny_weights[3]}' was trained for "
                                                   "scale x3 but the reference of --scale 4 is made at x2.")):
        run_batch([str(scene)], tmp_path / "out", scale=4, method="dualsr", weights=tiny_weights[4],
                  reference_weights=tiny_weights[3])
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_an_unreadable_inputs_reason_is_on_the_console(tmp_path, tiny_weights):
    broken = tmp_path / "broken.tif"
    broken.write_text("this is a text file, not a raster\n")
    lines = []
    summary = run_batch([str(broken)], tmp_path / "out", scale=2, weights=tiny_weights[2],
                        feedback=Feedback(log=lines.append))
    assert summary["exit_code"] == 1
    assert f"Failed: {broken}: --input '{broken}' is not a raster GDAL can read; choose a GeoTIFF, ENVI or other " \
           "raster file." in lines
