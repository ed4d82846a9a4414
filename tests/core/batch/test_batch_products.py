"""`python -m dualsr_core batch` on a folder of sensor products as downloaded: each product found
once, named by its id, and the result equal to an in-process Coarse run, also in stripes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

pytest.importorskip("torch")
pytest.importorskip("distributed")

from ..io.products.synthetic import EMIT_NAME, ENMAP_ID, write_emit, write_enmap  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
PINNED = dict(tile_size=16, overlap=4, precision="fp32", schedule="band", device="cpu")  # cores of 8 and 12 rows


def test_batch_finds_each_product_once_and_equals_a_coarse_run(tmp_path, tiny_weights):
    from dualsr_core.stages.coarse import super_resolve

    inputs = tmp_path / "downloads"
    enmap = write_enmap(inputs / ENMAP_ID, height=40, width=20)
    write_emit(inputs / EMIT_NAME)
    output = tmp_path / "sr"
    command = [sys.executable, "-m", "dualsr_core", "batch", "--input", str(inputs), "--output", str(output),
               "--scale", "2", "--weights", str(tiny_weights[2]), "--tile-size", "16", "--overlap", "4",
               "--precision", "fp32", "--schedule", "band", "--device", "cpu", "--workers", "1", "--stripe-rows", "12"]
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    records = {Path(r["input"]).name: r for r in json.loads((output / "manifest.json").read_text())["scenes"]}
    assert records[enmap.name]["stripes"] == 3 and records[EMIT_NAME]["stripes"] == 3  # GLT windows in stripes
    written = sorted(p.relative_to(output).as_posix() for p in output.rglob("*.tif"))
    assert written == sorted([f"{ENMAP_ID}/{ENMAP_ID}_x2.tif", f"{Path(EMIT_NAME).stem}_x2.tif"])
    for source, result in ((enmap, output / ENMAP_ID / f"{ENMAP_ID}_x2.tif"),
                           (inputs / EMIT_NAME, output / f"{Path(EMIT_NAME).stem}_x2.tif")):
        super_resolve(source, tmp_path / "reference.tif", 2, weights=tiny_weights[2], **PINNED)
        with rasterio.open(result) as ours, rasterio.open(tmp_path / "reference.tif") as theirs:
            np.testing.assert_array_equal(ours.read(), theirs.read())  # bit for bit, stripes or not
            assert ours.transform == theirs.transform and ours.crs == theirs.crs
            assert [ours.tags(b) for b in ours.indexes] == [theirs.tags(b) for b in theirs.indexes]
