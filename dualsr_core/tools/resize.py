"""Separable bicubic resizing expressed as sparse weight matrices.

Two conventions are provided (docs/method.md#resampling):

* ``"matlab"``: MATLAB ``imresize`` bicubic (cubic kernel a = -0.5), antialiased when shrinking,
  with symmetric index mirroring at the borders. Degradation (LR generation) and the fine stage
  (enhanced back-projection) use it.
* ``"pil"``: PIL's float (mode ``'F'``) bicubic resize, whose border taps are truncated and
  renormalised. The bicubic skip image of the coarse stage uses it.

Both agree in the interior and differ only within about 2*scale pixels of the border.

Resizing one axis is the product of an (out_len, in_len) matrix with the data. Because the
matrices are explicit, a tiled caller can read only the input window an output window needs
(:func:`window_rows`) and apply the sliced matrices with :func:`apply_weights`; the result is
bit-identical to the corresponding part of a whole-array :func:`resize`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse

from .checks import positive_integer, positive_number

METHODS = ("matlab", "pil")

# Elements per working block in apply_weights: bounds the float64 temporaries (about 32 MiB each)
# whatever the number of leading (band) axes.
_BLOCK_ELEMENTS = 1 << 22


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, zero outside [-2, 2].

    Args:
        x: Distances between sample and target positions, in kernel units.

    Returns:
        The kernel values, same shape as ``x``.
    """
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = 1.5 * ax3 - 2.5 * ax2 + 1.0
    outer = -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    return np.where(ax <= 1.0, inner, np.where(ax < 2.0, outer, 0.0))


def _to_csr(weights: np.ndarray, indices: np.ndarray, in_len: int) -> sparse.csr_matrix:
    """Assemble per-output-row taps into a CSR matrix.

    Args:
        weights: (out_len, taps) weights.
        indices: (out_len, taps) input indices, all in [0, in_len).
        in_len: Number of input samples (matrix columns).

    Returns:
        (out_len, in_len) CSR matrix with duplicate indices summed, sorted column indices and no
        stored zeros, so that :func:`window_rows` sees only the taps that contribute.
    """
    out_len = weights.shape[0]
    rows = np.repeat(np.arange(out_len), weights.shape[1])
    matrix = sparse.coo_matrix(
        (weights.ravel(), (rows, indices.ravel())), shape=(out_len, in_len)
    ).tocsr()
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def matlab_weights(
    in_len: int, out_len: int, scale: float | None = None, antialias: bool = True
) -> sparse.csr_matrix:
    """Resampling matrix of MATLAB ``imresize(..., 'bicubic')`` along one axis.

    Follows MATLAB's documented ``contributions`` routine, in 0-based coordinates: output sample
    x maps to input position u = (x + 0.5) / scale - 0.5 (MATLAB's 1-based
    u = x/scale + 0.5*(1 - 1/scale)). When shrinking with antialiasing the kernel is stretched by
    1/scale. Rows are normalised to sum 1 before out-of-range indices are mirrored with period
    2*in_len (MATLAB's ``[1:in, in:-1:1]``, which repeats the edge sample); taps that land on the
    same input index are summed.

    Args:
        in_len: Number of input samples.
        out_len: Number of output samples.
        scale: Scale factor; defaults to ``out_len / in_len``. ``imresize(A, s)`` passes s itself,
            which differs slightly from out_len/in_len when in_len*s is not an integer.
        antialias: Stretch the kernel when shrinking (MATLAB's default ``Antialiasing`` true).

    Returns:
        (out_len, in_len) CSR matrix whose rows sum to 1.
    """
    in_len = positive_integer(in_len, "in_len")
    out_len = positive_integer(out_len, "out_len")
    scale = out_len / in_len if scale is None else positive_number(scale, "scale")
    stretch = scale if (scale < 1.0 and antialias) else 1.0
    kernel_width = 4.0 / stretch
    centre = (np.arange(out_len) + 0.5) / scale - 0.5
    left = np.floor(centre - kernel_width / 2.0).astype(np.int64)
    # MATLAB's tap count: ceil(kernel_width) + 2 covers the support from any left position.
    taps = left[:, None] + np.arange(math.ceil(kernel_width) + 2)
    # MATLAB's stretched kernel is scale*cubic(scale*d); the constant factor cancels in the
    # row normalisation, so it is left out.
    weights = _cubic((centre[:, None] - taps) * stretch)
    weights /= weights.sum(axis=1, keepdims=True)
    period = 2 * in_len
    folded = np.mod(taps, period)
    indices = np.where(folded < in_len, folded, period - 1 - folded)
    return _to_csr(weights, indices, in_len)


def pil_weights(in_len: int, out_len: int) -> sparse.csr_matrix:
    """Resampling matrix of PIL's float (mode ``'F'``) bicubic resize along one axis.

    Follows Pillow's ``precompute_coeffs``: the kernel (a = -0.5) is stretched by
    max(1, in_len/out_len), output sample i is centred at (i + 0.5) * in_len / out_len in
    input pixel units, taps outside [0, in_len) are dropped (not mirrored) and the remaining
    weights are renormalised to sum 1.

    Args:
        in_len: Number of input samples.
        out_len: Number of output samples.

    Returns:
        (out_len, in_len) CSR matrix whose rows sum to 1.
    """
    in_len = positive_integer(in_len, "in_len")
    out_len = positive_integer(out_len, "out_len")
    ratio = in_len / out_len
    stretch = max(ratio, 1.0)
    support = 2.0 * stretch
    centre = (np.arange(out_len) + 0.5) * ratio
    first = np.floor(centre - support).astype(np.int64)
    taps = first[:, None] + np.arange(math.ceil(2.0 * support) + 2)
    weights = _cubic((taps + 0.5 - centre[:, None]) / stretch)
    inside = (taps >= 0) & (taps < in_len)
    weights = np.where(inside, weights, 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    # Dropped taps carry zero weight; clipping only keeps their indices valid for assembly.
    return _to_csr(weights, np.clip(taps, 0, in_len - 1), in_len)


def skip_matrices(height: int, width: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The dense matrices of CoarSR's bicubic skip image (PIL bicubic upsampling by `scale`).

    The skip image of an (..., height, width) plane x is ``wy @ x @ wxt``; the inference engine
    and the training step both build it from these (float32, as the network adds it).

    Args:
        height: Low-resolution rows.
        width: Low-resolution columns.
        scale: Integer upsampling factor.

    Returns:
        ``(wy, wxt)``: float32 C-contiguous arrays of shape (height * scale, height) and
        (width, width * scale).
    """
    wy = pil_weights(height, height * scale).toarray().astype(np.float32)
    wxt = np.ascontiguousarray(pil_weights(width, width * scale).toarray().T, dtype=np.float32)
    return wy, wxt


def weights_for(method: str, in_len: int, out_len: int, scale: float | None = None
                ) -> sparse.csr_matrix:
    """Resampling matrix for one axis by method name.

    Args:
        method: ``"matlab"`` (antialiased MATLAB imresize) or ``"pil"`` (PIL bicubic).
        in_len: Number of input samples.
        out_len: Number of output samples.
        scale: MATLAB scale factor (see :func:`matlab_weights`); ignored by ``"pil"``, which
            depends only on the lengths.

    Returns:
        (out_len, in_len) CSR matrix.
    """
    if method == "matlab":
        return matlab_weights(in_len, out_len, scale=scale)
    if method == "pil":
        return pil_weights(in_len, out_len)
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}.")


def window_rows(weights: sparse.spmatrix, out_start: int, out_stop: int) -> tuple[int, int]:
    """Input index range that a contiguous block of output samples depends on.

    Output samples ``out_start .. out_stop - 1`` of ``weights @ x`` read only
    ``x[in_start:in_stop]``, so a tiled caller can read that window and compute
    ``weights[out_start:out_stop, in_start:in_stop] @ x[in_start:in_stop]``, which equals
    ``(weights @ x)[out_start:out_stop]``. The range is the hull of the stored entries of those
    rows; it is contiguous even when the taps are not (mirrored borders), so it may include a
    few samples with zero weight.

    Args:
        weights: (out_len, in_len) sparse matrix, e.g. from :func:`matlab_weights`.
        out_start: First output index (inclusive).
        out_stop: Last output index (exclusive).

    Returns:
        ``(in_start, in_stop)``, half-open; ``(0, 0)`` if the rows have no stored entries.
    """
    out_len = weights.shape[0]
    if not 0 <= out_start < out_stop <= out_len:
        raise ValueError(
            f"output range [{out_start}, {out_stop}) must be non-empty and within [0, {out_len})."
        )
    csr = sparse.csr_matrix(weights)
    columns = csr.indices[csr.indptr[out_start]:csr.indptr[out_stop]]
    if columns.size == 0:
        return 0, 0
    return int(columns.min()), int(columns.max()) + 1


def apply_weights(
    array: np.ndarray, row_weights: sparse.spmatrix, col_weights: sparse.spmatrix
) -> np.ndarray:
    """Apply ``row_weights @ X @ col_weights.T`` to every (H, W) plane of an array.

    The arithmetic is float64 and each output sample is summed in the same order whatever the
    leading shape or block size, so resizing a window with sliced matrices reproduces the
    whole-array result bit for bit.

    Args:
        array: (..., H, W) real array.
        row_weights: (out_H, H) sparse matrix.
        col_weights: (out_W, W) sparse matrix.

    Returns:
        (..., out_H, out_W) array; float32 for float32 input, float64 otherwise.
    """
    data = np.asarray(array)
    if data.ndim < 2:
        raise ValueError(f"array must have at least 2 dimensions (..., H, W), got {data.shape}.")
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise ValueError(f"array must be real-valued (float or integer), got dtype {data.dtype}.")
    height, width = data.shape[-2:]
    if row_weights.shape[1] != height or col_weights.shape[1] != width:
        raise ValueError(
            f"weights of shapes {row_weights.shape} and {col_weights.shape} do not fit an "
            f"array with H, W = {height}, {width}."
        )
    row_weights = sparse.csr_matrix(row_weights)
    col_weights = sparse.csr_matrix(col_weights)
    out_h, out_w = row_weights.shape[0], col_weights.shape[0]
    out_dtype = np.float32 if data.dtype == np.float32 else np.float64
    planes = data.reshape(-1, height, width)
    out = np.empty((planes.shape[0], out_h, out_w), dtype=out_dtype)
    per_plane = max(height * width, out_h * width, out_h * out_w)
    step = max(1, _BLOCK_ELEMENTS // per_plane)
    for start in range(0, planes.shape[0], step):
        block = planes[start:start + step]
        count = block.shape[0]
        # Put the resized axis first so that one sparse product handles every plane of the block.
        cols = np.ascontiguousarray(block.transpose(1, 0, 2), dtype=np.float64)
        tmp = row_weights @ cols.reshape(height, count * width)
        tmp = np.ascontiguousarray(tmp.reshape(out_h, count, width).transpose(2, 1, 0))
        tmp = col_weights @ tmp.reshape(width, count * out_h)
        out[start:start + count] = tmp.reshape(out_w, count, out_h).transpose(1, 2, 0)
    return out.reshape(data.shape[:-2] + (out_h, out_w))


def resize(array: np.ndarray, out_shape: tuple[int, int], method: str = "matlab") -> np.ndarray:
    """Resize the last two axes of an array to a given size.

    Args:
        array: (..., H, W) real array, e.g. a band-first cube (L, H, W).
        out_shape: Output (height, width).
        method: ``"matlab"`` (antialiased MATLAB imresize with scale = out/in per axis) or
            ``"pil"`` (PIL float bicubic).

    Returns:
        (..., out_height, out_width) array; float32 for float32 input, float64 otherwise.
    """
    data = np.asarray(array)
    if data.ndim < 2:
        raise ValueError(f"array must have at least 2 dimensions (..., H, W), got {data.shape}.")
    if len(out_shape) != 2:
        raise ValueError(f"out_shape must be (height, width), got {out_shape!r}.")
    out_h = positive_integer(out_shape[0], "out_shape[0]")
    out_w = positive_integer(out_shape[1], "out_shape[1]")
    height, width = data.shape[-2:]
    return apply_weights(
        data, weights_for(method, height, out_h), weights_for(method, width, out_w)
    )


def imresize(array: np.ndarray, scale: float, method: str = "matlab") -> np.ndarray:
    """Resize the last two axes by a scale factor, as MATLAB ``imresize(A, scale)`` does.

    The output size is ceil(H*scale) x ceil(W*scale). With ``"matlab"`` the weights use
    ``scale`` itself rather than the size ratio, as MATLAB does.

    Args:
        array: (..., H, W) real array.
        scale: Positive scale factor (2 enlarges, 0.5 shrinks).
        method: ``"matlab"`` or ``"pil"``.

    Returns:
        (..., ceil(H*scale), ceil(W*scale)) array; float32 for float32 input, float64 otherwise.
    """
    data = np.asarray(array)
    if data.ndim < 2:
        raise ValueError(f"array must have at least 2 dimensions (..., H, W), got {data.shape}.")
    scale = positive_number(scale, "scale")
    height, width = data.shape[-2:]
    out_h, out_w = math.ceil(height * scale), math.ceil(width * scale)
    return apply_weights(
        data,
        weights_for(method, height, out_h, scale),
        weights_for(method, width, out_w, scale),
    )
