"""Tests for dualsr_core.evaluation.metrics: hand-computed values and independent implementations."""

import json
import math

import numpy as np
import pytest

from dualsr_core.evaluation import metrics as mt


def _ssim_reference(ref, est, data_range, usable=None):
    """Straightforward SSIM: explicit loops over map positions with a 2-D Gaussian window."""
    yy, xx = np.mgrid[-5:6, -5:6]
    window = np.exp(-(xx**2 + yy**2) / (2 * 1.5**2))
    window /= window.sum()
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    bands, h, w = ref.shape
    scores = []
    for b in range(bands):
        values = []
        for i in range(h - 10):
            for j in range(w - 10):
                if usable is not None and not usable[i, j]:
                    continue
                x = ref[b, i:i + 11, j:j + 11]
                y = est[b, i:i + 11, j:j + 11]
                mx = np.sum(window * x)
                my = np.sum(window * y)
                vx = np.sum(window * (x - mx) ** 2)
                vy = np.sum(window * (y - my) ** 2)
                cxy = np.sum(window * (x - mx) * (y - my))
                values.append((2 * mx * my + c1) * (2 * cxy + c2)
                              / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
        scores.append(np.mean(values))
    return float(np.mean(scores))


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    ref = rng.random((4, 17, 20))
    est = np.clip(ref + 0.1 * rng.standard_normal(ref.shape), 0, 1)
    return ref, est


def test_psnr_of_known_mse():
    ref = np.zeros((2, 4, 5))
    assert mt.psnr(ref, ref + 0.1, data_range=1.0) == pytest.approx(20.0, abs=1e-9)
    assert mt.psnr(ref, ref - 0.1, data_range=2.0) == pytest.approx(10 * math.log10(400), abs=1e-9)


def test_psnr_uses_one_mse_over_the_cube():
    ref = np.zeros((2, 4, 5))
    est = np.stack([np.full((4, 5), 0.1), np.full((4, 5), 0.3)])
    # Cube MSE (0.01 + 0.09) / 2 = 0.05, not the mean of the per-band PSNRs.
    assert mt.psnr(ref, est, data_range=1.0) == pytest.approx(10 * math.log10(20), abs=1e-9)
    per_band = mt.psnr_per_band(ref, est, data_range=1.0)
    np.testing.assert_allclose(per_band, [20.0, 10 * math.log10(1 / 0.09)], atol=1e-9)


def test_identical_images(pair):
    ref, _ = pair
    assert mt.psnr(ref, ref.copy(), data_range=1.0) == 100.0
    assert mt.ssim(ref, ref.copy(), data_range=1.0) == pytest.approx(1.0, abs=1e-12)
    assert mt.sam(ref, ref.copy()) == 0.0
    assert mt.ergas(ref, ref.copy(), scale=4) == 0.0
    assert mt.rmse(ref, ref.copy()) == 0.0
    assert mt.cc(ref, ref.copy()) == pytest.approx(1.0, abs=1e-12)
    est = ref.copy()
    est[1] += 0.5
    per_band = mt.psnr_per_band(ref, est, data_range=1.0)
    assert per_band[0] == 100.0 and per_band[2] == 100.0
    assert per_band[1] == pytest.approx(10 * math.log10(4), abs=1e-9)


@pytest.mark.parametrize("data_range", [1.0, 4.0])
def test_ssim_matches_reference(pair, data_range):
    ref, est = pair
    ref, est = ref * data_range, est * data_range
    expected = _ssim_reference(ref, est, data_range)
    assert mt.ssim(ref, est, data_range=data_range) == pytest.approx(expected, abs=1e-10)
    assert expected < 0.95  # the pair is far enough apart for the comparison to mean something


def test_ssim_depends_on_data_range(pair):
    ref, est = pair
    assert mt.ssim(ref, est, data_range=1.0) != pytest.approx(
        mt.ssim(ref, est, data_range=255.0), abs=1e-3)


def test_ssim_with_mask_skips_windows_touching_invalid_pixels(pair):
    ref, est = pair
    est = est.copy()
    mask = np.ones(ref.shape[1:], dtype=bool)
    mask[8, 3] = False
    est[:, 8, 3] = np.nan  # nodata in the estimate must not leak into the result
    usable = np.ones((ref.shape[1] - 10, ref.shape[2] - 10), dtype=bool)
    usable[max(0, 8 - 10):9, max(0, 3 - 10):4] = False  # map positions whose window holds (8, 3)
    expected = _ssim_reference(ref, est, 1.0, usable)
    result = mt.ssim(ref, est, data_range=1.0, mask=mask)
    assert np.isfinite(result)
    assert result == pytest.approx(expected, abs=1e-10)


def test_ssim_errors(pair):
    ref, est = pair
    with pytest.raises(ValueError, match="at least 11x11"):
        mt.ssim(ref[:, :10], est[:, :10], data_range=1.0)
    mask = np.zeros(ref.shape[1:], dtype=bool)
    mask[::2] = True  # no 11x11 block is fully valid
    with pytest.raises(ValueError, match="no 11x11 window"):
        mt.ssim(ref, est, data_range=1.0, mask=mask)


def test_sam_hand_values():
    ref = np.zeros((2, 1, 3))
    est = np.zeros((2, 1, 3))
    ref[:, 0, 0], est[:, 0, 0] = (1, 0), (1, 1)    # 45 degrees
    ref[:, 0, 1], est[:, 0, 1] = (1, 0), (0, 2)    # 90 degrees
    ref[:, 0, 2], est[:, 0, 2] = (3, 4), (-6, -8)  # 180 degrees
    np.testing.assert_allclose(mt.sam_map(ref, est)[0], [45, 90, 180], atol=1e-12)
    assert mt.sam(ref, est) == pytest.approx(105.0, abs=1e-12)


def test_sam_scale_invariant_and_accurate_for_small_angles(pair):
    ref, _ = pair
    assert mt.sam(ref, 2 * ref) == pytest.approx(0.0, abs=1e-6)
    assert mt.sam(ref, 0.37 * ref) == pytest.approx(0.0, abs=1e-6)
    ref = np.zeros((2, 1, 1))
    est = np.zeros((2, 1, 1))
    ref[:, 0, 0], est[:, 0, 0] = (1.0, 0.0), (1.0, 1e-8)
    # arccos of the rounded cosine would give 0 here.
    assert mt.sam(ref, est) == pytest.approx(math.degrees(math.atan(1e-8)), rel=1e-6)


def test_sam_excludes_zero_norm_pixels(pair):
    ref, est = pair
    ref, est = ref.copy(), est.copy()
    inputs = (ref.copy(), est.copy())
    ref[:, 0, 0] = 0.0
    est[:, 1, 1] = 0.0
    ref[:, 2, 2] = est[:, 2, 2] = 0.0
    angles = mt.sam_map(ref, est)
    assert np.isnan(angles[[0, 1, 2], [0, 1, 2]]).all()
    others = np.ones(angles.shape, dtype=bool)
    others[[0, 1, 2], [0, 1, 2]] = False
    assert np.isfinite(angles[others]).all()
    expected = np.nanmean(angles)
    assert mt.sam(ref, est) == pytest.approx(expected, abs=1e-12)
    # Those pixels contribute nothing: the same as masking them out of the original pair.
    mask = np.ones(ref.shape[1:], dtype=bool)
    mask[[0, 1, 2], [0, 1, 2]] = False
    assert mt.sam(*inputs, mask=mask) == pytest.approx(expected, abs=1e-12)
    assert mt.sam(*inputs) != pytest.approx(expected, abs=1e-9)


def test_sam_undefined_everywhere():
    zeros = np.zeros((3, 4, 4))
    assert mt.sam(zeros, zeros.copy()) == 0.0
    est = zeros.copy()
    est[:, 0, 0] = 1.0
    with pytest.raises(ValueError, match="SAM is undefined"):
        mt.sam(zeros, est)


def test_ergas_hand_value():
    ref = np.stack([np.full((3, 3), 2.0), np.full((3, 3), 4.0), np.zeros((3, 3))])
    est = ref + 0.2
    # RMSE/mean: 0.1 and 0.05; the zero-mean third band is excluded.
    expected = 100 / 4 * math.sqrt((0.1**2 + 0.05**2) / 2)
    assert mt.ergas(ref, est, scale=4) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="zero mean"):
        mt.ergas(ref[2:], est[2:], scale=4)


def test_rmse_hand_value():
    ref = np.zeros((2, 2, 2))
    est = ref.copy()
    est[0] = 0.3
    est[1] = 0.4
    assert mt.rmse(ref, est) == pytest.approx(math.sqrt((0.09 + 0.16) / 2), abs=1e-12)


def test_cc(pair):
    ref, est = pair
    assert mt.cc(ref, 3 * ref + 1) == pytest.approx(1.0, abs=1e-12)
    assert mt.cc(ref, -ref) == pytest.approx(-1.0, abs=1e-12)
    expected = np.mean([np.corrcoef(ref[b].ravel(), est[b].ravel())[0, 1] for b in range(4)])
    assert mt.cc(ref, est) == pytest.approx(expected, abs=1e-12)
    constant = est.copy()
    constant[0] = 0.25
    expected = np.mean([np.corrcoef(ref[b].ravel(), est[b].ravel())[0, 1] for b in range(1, 4)])
    assert mt.cc(ref, constant) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="constant"):
        mt.cc(ref, np.full_like(ref, 0.5))


def test_mask_restricts_every_metric(pair):
    ref, est = pair
    mask = np.zeros(ref.shape[1:], dtype=bool)
    mask[2:15, 1:18] = True
    corrupted = est.copy()
    corrupted[:, ~mask] = np.nan
    expected = mt.evaluate_all(ref[:, 2:15, 1:18], est[:, 2:15, 1:18], data_range=1.0, scale=2)
    result = mt.evaluate_all(ref, corrupted, data_range=1.0, scale=2, mask=mask)
    for key in ("psnr", "ssim", "sam", "ergas", "rmse", "cc"):
        assert result[key] == pytest.approx(expected[key], abs=1e-10), key
    np.testing.assert_allclose(result["psnr_per_band"], expected["psnr_per_band"], atol=1e-10)


def test_inputs_are_not_modified(pair):
    ref, est = pair
    ref = ref.astype(np.float32)
    est = est.astype(np.float32)
    ref[:, :3, :3] = 0.0  # exact zeros are what the reference SAM overwrote (docs/method.md#reference-defects, D10)
    est[:, :3, :3] = 0.0
    saved = ref.copy(), est.copy()
    mt.evaluate_all(ref, est, data_range=1.0, scale=4)
    mt.sam_map(ref, est)
    np.testing.assert_array_equal(ref, saved[0])
    np.testing.assert_array_equal(est, saved[1])


def test_evaluate_all_keys_and_types(pair):
    ref, est = pair
    result = mt.evaluate_all(ref, est, data_range=1.0, scale=4)
    assert set(result) == {"psnr", "ssim", "sam", "ergas", "rmse", "cc", "psnr_per_band"}
    assert all(type(result[k]) is float for k in result if k != "psnr_per_band")
    assert len(result["psnr_per_band"]) == ref.shape[0]
    assert all(np.isfinite(v) for v in result["psnr_per_band"])
    json.dumps(result)
    assert result["psnr"] == pytest.approx(mt.psnr(ref, est, data_range=1.0))
    assert result["sam"] == pytest.approx(mt.sam(ref, est))


def test_shape_and_argument_errors(pair):
    ref, est = pair
    with pytest.raises(ValueError, match="same shape"):
        mt.psnr(ref, est[:, :-1], data_range=1.0)
    with pytest.raises(ValueError, match="same shape"):
        mt.sam(ref, est[:3])
    with pytest.raises(ValueError, match=r"\(L, H, W\)"):
        mt.rmse(ref[0], est[0])
    with pytest.raises(ValueError, match="mask must have shape"):
        mt.cc(ref, est, mask=np.ones((17, 21), dtype=bool))
    with pytest.raises(ValueError, match="no pixel as valid"):
        mt.psnr(ref, est, data_range=1.0, mask=np.zeros(ref.shape[1:], dtype=bool))
    with pytest.raises(ValueError, match="data_range"):
        mt.psnr(ref, est, data_range=0)
    with pytest.raises(ValueError, match="scale"):
        mt.ergas(ref, est, scale=-4)
    with pytest.raises(TypeError):
        mt.psnr(ref, est)  # data_range has no hidden default
