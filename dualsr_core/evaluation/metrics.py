"""Image-quality metrics for hyperspectral cubes (docs/method.md#metrics).

Every function takes a reference and an estimate of the same shape (L, H, W), bands first, and an
optional (H, W) boolean ``mask`` in which True marks a valid pixel. The definitions follow the
DualSR evaluation protocol:

* PSNR: one MSE over the whole cube (all valid pixels of all bands), with an explicit
  ``data_range``; 100.0 when the MSE is zero, as the reference ``eval.py`` returns.
* SSIM: Wang et al. per band with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  valid-mode statistics (the map is (H-10) x (W-10)), averaged over the map and then the bands.
* SAM: mean per-pixel spectral angle in degrees, pixels with a zero spectrum excluded. The
  reference code's NaN clean-up zeroes whole rows and overwrites its inputs (docs/method.md#reference-defects, D9, D10);
  here inputs are never modified and no NaN is returned for finite input.
* ERGAS, RMSE and the mean per-band correlation coefficient (CC).

Computation is float64 throughout and works band by band, so a float32 cube is never copied as
a whole in float64.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..tools.checks import positive_number

# PSNR for identical images (MSE = 0), the value returned by the reference eval.py.
PSNR_IDENTICAL = 100.0

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# Rows of the cube processed at once by sam_map: bounds its float64 temporaries.
_SAM_BLOCK_ELEMENTS = 1 << 22


def _check_pair(ref: np.ndarray, est: np.ndarray, mask: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate a reference/estimate pair and its mask.

    Args:
        ref: Reference cube (L, H, W).
        est: Estimated cube (L, H, W).
        mask: Optional (H, W) mask, True = valid.

    Returns:
        ``ref`` and ``est`` as arrays (not copied) and the mask as a boolean array or None.
    """
    ref = np.asarray(ref)
    est = np.asarray(est)
    if ref.ndim != 3:
        raise ValueError(f"ref must have shape (L, H, W), got {ref.shape}.")
    if ref.shape != est.shape:
        raise ValueError(f"ref and est must have the same shape, got {ref.shape} and {est.shape}.")
    if 0 in ref.shape:
        raise ValueError(f"ref and est must not be empty, got shape {ref.shape}.")
    if mask is None:
        return ref, est, None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != ref.shape[1:]:
        raise ValueError(f"mask must have shape (H, W) = {ref.shape[1:]}, got {mask.shape}.")
    if not mask.any():
        raise ValueError("mask marks no pixel as valid.")
    return ref, est, mask


def _band(cube: np.ndarray, index: int, mask: np.ndarray | None) -> np.ndarray:
    """Valid pixels of one band as float64.

    Args:
        cube: (L, H, W) cube.
        index: Band index.
        mask: Optional (H, W) boolean mask.

    Returns:
        The (H, W) band, or the 1-D array of its valid pixels when a mask is given.
    """
    band = np.asarray(cube[index], dtype=np.float64)
    return band if mask is None else band[mask]


def _band_mse(ref: np.ndarray, est: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Mean squared error of every band over the valid pixels.

    Args:
        ref: Validated reference cube (L, H, W).
        est: Validated estimated cube (L, H, W).
        mask: Optional (H, W) boolean mask.

    Returns:
        (L,) float64 array.
    """
    mse = np.empty(ref.shape[0])
    for b in range(ref.shape[0]):
        diff = _band(ref, b, mask) - _band(est, b, mask)
        mse[b] = np.mean(diff * diff)
    return mse


def _psnr_from_mse(mse: np.ndarray, data_range: float) -> np.ndarray:
    """PSNR in dB for given MSEs, PSNR_IDENTICAL where the MSE is zero.

    Args:
        mse: Mean squared errors.
        data_range: Peak signal value.

    Returns:
        Array of the same shape as ``mse``.
    """
    positive = mse > 0
    safe = np.where(positive, mse, 1.0)
    return np.where(positive, 10.0 * np.log10(data_range**2 / safe), PSNR_IDENTICAL)


def psnr(ref: np.ndarray, est: np.ndarray, *, data_range: float,
         mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio from one MSE over the whole cube.

    The MSE is taken over all valid pixels of all bands (not an average of per-band PSNRs).
    Identical images give 100.0 rather than infinity, as the reference eval.py does.

    Args:
        ref: Reference cube (L, H, W).
        est: Estimated cube (L, H, W).
        data_range: Peak value of the data (1.0 for cubes scaled to [0, 1]).
        mask: Optional (H, W) mask, True = valid pixel.

    Returns:
        PSNR in dB.
    """
    ref, est, mask = _check_pair(ref, est, mask)
    data_range = positive_number(data_range, "data_range")
    # Every band has the same number of valid pixels, so the cube MSE is the mean band MSE.
    mse = np.mean(_band_mse(ref, est, mask))
    return float(_psnr_from_mse(np.asarray(mse), data_range))


def psnr_per_band(ref: np.ndarray, est: np.ndarray, *, data_range: float,
                  mask: np.ndarray | None = None) -> np.ndarray:
    """PSNR of each band, with 100.0 for a band whose MSE is zero.

    Args:
        ref: Reference cube (L, H, W).
        est: Estimated cube (L, H, W).
        data_range: Peak value of the data.
        mask: Optional (H, W) mask, True = valid pixel.

    Returns:
        (L,) float64 array of PSNRs in dB.
    """
    ref, est, mask = _check_pair(ref, est, mask)
    data_range = positive_number(data_range, "data_range")
    return _psnr_from_mse(_band_mse(ref, est, mask), data_range)


def gaussian_window_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian; its outer product with itself is the SSIM window.

    Args:
        size: Number of taps.
        sigma: Standard deviation in pixels.

    Returns:
        (size,) float64 array summing to 1.
    """
    x = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable valid-mode correlation of a 2-D image with ``outer(window, window)``.

    Args:
        image: (H, W) float64 image.
        window: (k,) symmetric 1-D window, k odd.

    Returns:
        (H - k + 1, W - k + 1) array.
    """
    half = window.size // 2
    # The border mode only affects outputs whose window leaves the image; they are cropped.
    rows = ndimage.correlate1d(image, window, axis=0, mode="constant")[half:-half]
    return ndimage.correlate1d(rows, window, axis=1, mode="constant")[:, half:-half]


def _ssim_map(x: np.ndarray, y: np.ndarray, window: np.ndarray, c1: float, c2: float
              ) -> np.ndarray:
    """Wang et al. SSIM map of two bands with valid-mode local statistics.

    Args:
        x: (H, W) float64 reference band.
        y: (H, W) float64 estimated band.
        window: 1-D Gaussian window.
        c1: Luminance stabiliser (K1*R)^2.
        c2: Contrast stabiliser (K2*R)^2.

    Returns:
        (H - 10, W - 10) SSIM map for the 11-tap window.
    """
    mu_x = _filter_valid(x, window)
    mu_y = _filter_valid(y, window)
    var_x = _filter_valid(x * x, window) - mu_x * mu_x
    var_y = _filter_valid(y * y, window) - mu_y * mu_y
    cov = _filter_valid(x * y, window) - mu_x * mu_y
    numerator = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim(ref: np.ndarray, est: np.ndarray, *, data_range: float,
         mask: np.ndarray | None = None) -> float:
    """Mean structural similarity over bands (Wang et al. 2004).

    Per band: 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, statistics by
    valid-mode filtering (no padding), SSIM = mean of the map; the result is the mean over bands.
    With a mask, only map positions whose whole 11x11 window is valid are averaged.

    Args:
        ref: Reference cube (L, H, W), H and W at least 11.
        est: Estimated cube (L, H, W).
        data_range: Peak value of the data (the R in C1 = (K1*R)^2).
        mask: Optional (H, W) mask, True = valid pixel.

    Returns:
        Mean SSIM, 1.0 for identical images.
    """
    ref, est, mask = _check_pair(ref, est, mask)
    data_range = positive_number(data_range, "data_range")
    height, width = ref.shape[1:]
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, "
            f"got {height}x{width}."
        )
    window = gaussian_window_1d()
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    usable = None
    if mask is not None:
        half = SSIM_WINDOW // 2
        # A map position is usable when its whole window is valid: erode by the window, then keep
        # the valid-mode part.
        eroded = ndimage.binary_erosion(mask, structure=np.ones((SSIM_WINDOW, SSIM_WINDOW), bool))
        usable = eroded[half:-half, half:-half]
        if not usable.any():
            raise ValueError(
                f"mask leaves no {SSIM_WINDOW}x{SSIM_WINDOW} window of valid pixels for SSIM."
            )
    scores = np.empty(ref.shape[0])
    for b in range(ref.shape[0]):
        x = np.asarray(ref[b], dtype=np.float64)
        y = np.asarray(est[b], dtype=np.float64)
        if mask is not None:
            # Invalid pixels (possibly NaN nodata) only reach excluded map positions; zeroing them
            # keeps non-finite values out of the arithmetic.
            x = np.where(mask, x, 0.0)
            y = np.where(mask, y, 0.0)
        band_map = _ssim_map(x, y, window, c1, c2)
        scores[b] = band_map.mean() if usable is None else band_map[usable].mean()
    return float(scores.mean())


def sam_map(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """Per-pixel spectral angle in degrees.

    The angle is computed as 2*atan2(|a - b|, |a + b|) of the unit spectra a and b (Kahan),
    which is accurate near 0 degrees and needs no clipping: arccos of a rounded cosine loses
    about 1e-6 degrees there and can exceed 1 (the reference code's NaN source, docs/method.md#reference-defects, D9).
    Identical spectra give exactly 0, proportional ones about 1e-14 degrees.

    Args:
        ref: Reference cube (L, H, W).
        est: Estimated cube (L, H, W).

    Returns:
        (H, W) float64 map, NaN where either spectrum has zero norm.
    """
    ref, est, _ = _check_pair(ref, est, None)
    bands, height, width = ref.shape
    out = np.empty((height, width))
    step = max(1, _SAM_BLOCK_ELEMENTS // (bands * width))
    for start in range(0, height, step):
        a = np.asarray(ref[:, start:start + step], dtype=np.float64)
        b = np.asarray(est[:, start:start + step], dtype=np.float64)
        norm_a = np.sqrt(np.sum(a * a, axis=0))
        norm_b = np.sqrt(np.sum(b * b, axis=0))
        defined = (norm_a > 0) & (norm_b > 0)
        unit_a = a / np.where(defined, norm_a, 1.0)
        unit_b = b / np.where(defined, norm_b, 1.0)
        diff = np.sqrt(np.sum((unit_a - unit_b) ** 2, axis=0))
        total = np.sqrt(np.sum((unit_a + unit_b) ** 2, axis=0))
        angle = np.degrees(2.0 * np.arctan2(diff, total))
        out[start:start + step] = np.where(defined, angle, np.nan)
    return out


def sam(ref: np.ndarray, est: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean spectral angle mapper in degrees.

    Pixels where either spectrum has zero norm are excluded (the angle is undefined there).

    Args:
        ref: Reference cube (L, H, W).
        est: Estimated cube (L, H, W).
        mask: Optional (H, W) mask, True = valid pixel.

    Returns:
        Mean angle in degrees; 0.0 for identical images, including identical all-zero ones.
    """
    ref, est, mask = _check_pair(ref, est, mask)
    angles = sam_map(ref, est)
    usable = ~np.isnan(angles)
    if mask is not None:
        usable &= mask
    if usable.any():
        return float(angles[usable].mean())
    selection = np.s_[:] if mask is None else np.s_[:, mask]
    if np.array_equal(ref[selection], est[selection]):
        return 0.0
    raise ValueError("SAM is undefined: no valid pixel has a non-zero spectrum in both images.")


def rmse(ref: np.ndarray, est: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root mean squared error over all valid pixels of all bands.

    Args:
        ref: Reference cube (L, H, W).
        est: Estimated cube (L, H, W).
        mask: Optional (H, W) mask, True = valid pixel.

    Returns:
        RMSE in data units.
    """
    ref, est, mask = _check_pair(ref, est, mask)
    return float(np.sqrt(np.mean(_band_mse(ref, est, mask))))


def ergas(ref: np.ndarray, est: np.ndarray, *, scale: float,
          mask: np.ndarray | None = None) -> float:
    """Relative dimensionless global error in synthesis (Wald 2000).

    ERGAS = 100 / scale * sqrt(mean_b (RMSE_b / mean_b(ref))^2), where scale is the
    super-resolution factor (the low/high resolution pixel-size ratio). Bands whose reference
    mean is zero are excluded.

    Args:
        ref: Reference cube (L, H, W).
        est: Estimated cube (L, H, W).
        scale: Super-resolution factor, e.g. 4.
        mask: Optional (H, W) mask, True = valid pixel.

    Returns:
        ERGAS (lower is better, 0 for identical images).
    """
    ref, est, mask = _check_pair(ref, est, mask)
    scale = positive_number(scale, "scale")
    mse = _band_mse(ref, est, mask)
    means = np.array([_band(ref, b, mask).mean() for b in range(ref.shape[0])])
    usable = means != 0
    if not usable.any():
        raise ValueError("ERGAS is undefined: every band of ref has a zero mean.")
    ratios = mse[usable] / (means[usable] ** 2)
    return float(100.0 / scale * np.sqrt(np.mean(ratios)))


def cc(ref: np.ndarray, est: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean over bands of the Pearson correlation coefficient between ref and est.

    Bands that are constant (over the valid pixels) in either image are excluded, since their
    correlation is undefined.

    Args:
        ref: Reference cube (L, H, W).
        est: Estimated cube (L, H, W).
        mask: Optional (H, W) mask, True = valid pixel.

    Returns:
        Mean correlation coefficient in [-1, 1].
    """
    ref, est, mask = _check_pair(ref, est, mask)
    values = []
    for b in range(ref.shape[0]):
        x = _band(ref, b, mask)
        y = _band(est, b, mask)
        # max == min is an exact constancy test; a tiny variance from rounding is not.
        if x.max() == x.min() or y.max() == y.min():
            continue
        dx = x - x.mean()
        dy = y - y.mean()
        r = np.sum(dx * dy) / np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
        values.append(np.clip(r, -1.0, 1.0))
    if not values:
        raise ValueError("CC is undefined: every band is constant in ref or est.")
    return float(np.mean(values))


def evaluate_all(ref: np.ndarray, est: np.ndarray, *, data_range: float, scale: float,
                 mask: np.ndarray | None = None) -> dict[str, float | list[float]]:
    """All metrics of this module for one image pair.

    Args:
        ref: Reference cube (L, H, W).
        est: Estimated cube (L, H, W).
        data_range: Peak value of the data, for PSNR and SSIM.
        scale: Super-resolution factor, for ERGAS.
        mask: Optional (H, W) mask, True = valid pixel.

    Returns:
        Dict with float values ``psnr``, ``ssim``, ``sam``, ``ergas``, ``rmse``, ``cc`` and
        ``psnr_per_band``, a list of floats (JSON-serialisable).
    """
    return {
        "psnr": psnr(ref, est, data_range=data_range, mask=mask),
        "ssim": ssim(ref, est, data_range=data_range, mask=mask),
        "sam": sam(ref, est, mask=mask),
        "ergas": ergas(ref, est, scale=scale, mask=mask),
        "rmse": rmse(ref, est, mask=mask),
        "cc": cc(ref, est, mask=mask),
        "psnr_per_band": [float(v) for v in
                          psnr_per_band(ref, est, data_range=data_range, mask=mask)],
    }
