"""The true-colour default style (.qml) written beside raster outputs: band choice, stretch, file."""
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio

from dualsr_core.io import style
from dualsr_core.io.style import style_path, true_colour, write_default_style
from dualsr_core.stages.degrade import degrade

from ...conftest import smooth_cube, write_raster

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "sample" / "enmap_potsdam.tif"


def read_qml(path: Path) -> dict:
    """Bands and min/max of the multiband colour renderer of a .qml file."""
    renderer = ET.parse(path).getroot().find("pipe/rasterrenderer")
    result = {"type": renderer.get("type"),
              "bands": tuple(int(renderer.get(f"{c}Band")) for c in ("red", "green", "blue"))}
    for colour in ("red", "green", "blue"):
        element = renderer.find(f"{colour}ContrastEnhancement")
        result[colour] = (float(element.find("minValue").text), float(element.find("maxValue").text))
        assert element.find("algorithm").text == "StretchToMinimumMaximum"
    return result


def expected_bands(wavelengths_nm, bad) -> tuple:
    """1-based bands nearest 640, 550, 470 nm among good ones, computed here independently."""
    wavelengths = np.array(wavelengths_nm, dtype=float)
    wavelengths[np.array(bad)] = np.inf
    return tuple(int(np.argmin(np.abs(wavelengths - target))) + 1 for target in (640, 550, 470))


def test_bands_nearest_640_550_470_among_good_bands(tmp_path):
    rng = np.random.default_rng(3)
    wavelengths = np.sort(rng.uniform(400, 1000, 40)).round(2)
    nearest_red = int(np.argmin(abs(wavelengths - 640)))
    bad = [b in (nearest_red, 0) for b in range(40)]  # the band nearest red is flagged bad
    tags = [{"bbl": "0" if b else "1"} for b in bad]
    path = write_raster(tmp_path / "r.tif", smooth_cube(40, 12, 10), wavelengths_nm=wavelengths, band_tags=tags)
    chosen = true_colour(path)
    assert chosen.bands == expected_bands(wavelengths, bad)
    assert chosen.bands[0] != nearest_red + 1


def test_micrometre_wavelengths_and_file_order(tmp_path):
    wavelengths_nm = [860.0, 470.5, 2200.0, 551.0, 639.0, 700.0, 440.0]  # not in wavelength order
    cube = smooth_cube(7, 10, 10)
    path = write_raster(tmp_path / "um.tif", cube, band_tags=[
        {"wavelength": str(w / 1000), "wavelength_units": "Micrometers"} for w in wavelengths_nm])
    assert true_colour(path).bands == expected_bands(wavelengths_nm, [False] * 7) == (5, 4, 2)


def test_stretch_is_the_2_and_98_percentiles_of_what_qgis_shows(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(-200, 9000, size=(3, 40, 50)).astype(np.int16)
    raw[:, :5, :7] = -32768  # nodata
    raw[1, 30:, 40:] = -32768
    path = write_raster(tmp_path / "int.tif", raw, nodata=-32768, wavelengths_nm=[640, 550, 470],
                        scales=[1e-4] * 3)
    qml = read_qml(write_default_style(path))
    assert qml["type"] == "multibandcolor" and qml["bands"] == (1, 2, 3)
    for band, colour in enumerate(("red", "green", "blue")):
        values = raw[band][raw[band] != -32768].astype(np.float64) * 1e-4  # QGIS applies the band scale
        np.testing.assert_allclose(qml[colour], np.percentile(values, [2, 98]), rtol=1e-12)


def test_float_nan_nodata_and_no_scale(tmp_path):
    cube = smooth_cube(3, 20, 20, seed=5)
    cube[0, :4] = np.nan
    path = write_raster(tmp_path / "f.tif", cube, nodata=float("nan"), wavelengths_nm=[470, 550, 640])
    qml = read_qml(write_default_style(path))
    assert qml["bands"] == (3, 2, 1)
    np.testing.assert_allclose(qml["blue"], np.percentile(cube[0][4:], [2, 98]), rtol=1e-6)


def test_without_wavelengths_no_style_and_a_stale_one_of_ours_goes(tmp_path):
    cube = smooth_cube(3, 8, 8)
    path = write_raster(tmp_path / "out.tif", cube, wavelengths_nm=[640, 550, 470])
    assert write_default_style(path) == tmp_path / "out.qml"
    write_raster(path, cube)  # a new result at the same path, without wavelength metadata
    assert write_default_style(path) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_a_style_the_user_wrote_is_kept(tmp_path):
    path = write_raster(tmp_path / "out.tif", smooth_cube(3, 8, 8), wavelengths_nm=[640, 550, 470])
    (tmp_path / "out.qml").write_text("<qgis/>")
    lines = []
    assert write_default_style(path, style.Feedback(log=lines.append)) is None
    assert (tmp_path / "out.qml").read_text() == "<qgis/>" and "Kept the existing style" in lines[0]


def test_no_style_when_a_colour_has_no_band_nearby(tmp_path):
    swir = write_raster(tmp_path / "swir.tif", smooth_cube(4, 8, 8), wavelengths_nm=[1000, 1500, 2000, 2400])
    one_visible = write_raster(tmp_path / "one.tif", smooth_cube(3, 8, 8), wavelengths_nm=[560, 900, 1000])
    assert true_colour(swir) is None and true_colour(one_visible) is None
    assert write_default_style(swir) is None and not style_path(swir).exists()


def test_an_empty_band_is_skipped_for_the_next_nearest(tmp_path):
    cube = smooth_cube(4, 8, 8)
    cube[0] = -1.0  # the band nearest red has no valid pixel (and no bbl flag)
    path = write_raster(tmp_path / "e.tif", cube, nodata=-1.0, wavelengths_nm=[641, 630, 550, 470])
    assert true_colour(path).bands == (2, 3, 4)


def test_large_rasters_are_sampled(tmp_path, monkeypatch):
    cube = smooth_cube(1, 60, 70)
    path = write_raster(tmp_path / "big.tif", cube)
    monkeypatch.setattr(style, "SAMPLE_PIXELS", 500)
    with rasterio.open(path) as ds:
        sample = style._sample(ds, 0)
    assert 250 < sample.size <= 500 and np.isin(sample, cube[0].astype(np.float64)).all()


def test_the_sample_opens_in_true_colour(tmp_path):
    with rasterio.open(SAMPLE) as ds:
        wavelengths = [float(ds.tags(b + 1)["wavelength"]) for b in range(ds.count)]
        bad = [ds.tags(b + 1)["bbl"] == "0" for b in range(ds.count)]
    assert true_colour(SAMPLE).bands == expected_bands(wavelengths, bad) == (44, 28, 11)


def test_degrade_writes_the_style_beside_its_output(tmp_path):
    out = tmp_path / "low.tif"
    degrade(SAMPLE, out, 2)
    qml = read_qml(style_path(out))
    assert qml["bands"] == (44, 28, 11)
    with rasterio.open(out) as ds:
        raw = ds.read(44).astype(np.float64)
        values = raw[raw != ds.nodata] * ds.scales[43]
    np.testing.assert_allclose(qml["red"], np.percentile(values, [2, 98]), rtol=1e-12)


def test_coarse_writes_the_style_and_fine_leaves_none_for_its_intermediates(tmp_path, tiny_weights):
    pytest.importorskip("torch")
    from dualsr_core.stages.coarse import super_resolve
    from dualsr_core.stages.fine import refine

    src = write_raster(tmp_path / "in.tif", smooth_cube(8, 10, 10), wavelengths_nm=[450 + 30 * b for b in range(8)])
    super_resolve(src, tmp_path / "sr.tif", 2, weights=tiny_weights[2], precision="fp32")
    assert read_qml(tmp_path / "sr.qml")["bands"] == expected_bands([450 + 30 * b for b in range(8)], [False] * 8)
    (tmp_path / "fine").mkdir()
    refine(src, tmp_path / "fine" / "x2.tif", 2, weights=tiny_weights[2], precision="fp32")
    assert sorted(p.name for p in (tmp_path / "fine").iterdir()) == ["x2.qml", "x2.tif"]
