"""The batch command's argument checks, before any scene is read or dask is imported: one sentence
naming the command-line option."""
from __future__ import annotations

import pytest

from dualsr_core.batch.runner import run_batch
from dualsr_core.errors import InputError


@pytest.mark.parametrize("bad, message", [
    (dict(scale=5), "--scale is 5 but must be one of 2, 3, 4, 8."),
    (dict(method="fine"), "--method is 'fine' but must be one of coarse, dualsr."),
    (dict(driver="PNG"), "--format is 'PNG' but must be one of GTiff, COG, ENVI."),
    (dict(tile_size=0), "--tile-size must be a whole number of at least 1 (got 0)."),
    (dict(tile_size=16.0), "--tile-size must be a whole number of at least 1 (got 16.0)."),
    (dict(iterations=0), "--iterations must be a whole number of at least 1 (got 0)."),
    (dict(band_chunk=0), "--band-chunk must be a whole number of at least 1 (got 0)."),
    (dict(stripe_rows=-1), "--stripe-rows must be 0 (never split) or positive (got -1)."),
])
def test_bad_options_are_refused_naming_the_option(tmp_path, bad, message):
    with pytest.raises(InputError) as info:
        run_batch([str(tmp_path / "missing.tif")], tmp_path / "out", **{"scale": 2, **bad})
    assert str(info.value) == message
    assert not (tmp_path / "out").exists()  # checked before anything is written
