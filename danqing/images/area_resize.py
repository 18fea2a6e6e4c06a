"""OpenCV's INTER_AREA downscale, bit for bit, at 3-5x its speed for non-integer factors.

The blur measure shrinks every image to the working resolution with `cv2.resize(...,
INTER_AREA)`. For an integer factor OpenCV takes a fast block-average path, but for any other
factor (640 -> 512, 800 -> 512, and 1024 x 683 -> 512 x 342 too, since 683 / 342 is not 2) its
generic path scatters every source pixel through a table, row by row and twice for the rows that
straddle two output rows: 1-2 ms per web-sized image, as much as the JPEG decode itself
(benchmarks/image_metrics.py).

This module computes the same thing in the same float32 operation order, so that the output is
identical, byte for byte, to OpenCV's (tests/test_image_metrics.py checks that on hundreds of random
sizes): the weights are OpenCV's `computeResizeAreaTab` (including its 1e-3 cut-offs for slivers
of a pixel), each output pixel is first the weighted sum of its source pixels along a row, then the
weighted sum of those row results along a column, rounded half to even. What differs is the
memory order: the row pass runs on the transposed image, so that the sum for one output column is
a vector operation over all source rows, and the column pass runs over contiguous output rows.
"""

from __future__ import annotations

import math

import cv2
import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _area_weights(source_size: int, target_size: int):
    """OpenCV's computeResizeAreaTab for one axis: per target pixel, its first source pixel, the
    number of consecutive source pixels it covers and their float32 weights."""
    scale = 1.0 / (target_size / source_size)  # as OpenCV: 1 / inv_scale
    first = np.empty(target_size, np.int64)
    count = np.zeros(target_size, np.int64)
    weight = np.zeros((target_size, int(math.ceil(scale)) + 2), np.float32)
    for d in range(target_size):
        fs1 = d * scale
        fs2 = fs1 + scale
        cell = min(scale, source_size - fs1)
        s2 = min(int(math.floor(fs2)), source_size - 1)
        s1 = min(int(math.ceil(fs1)), s2)
        k = 0
        first[d] = s1
        if s1 - fs1 > 1e-3:
            first[d] = s1 - 1
            weight[d, k] = np.float32((s1 - fs1) / cell)
            k += 1
        for _ in range(s1, s2):
            weight[d, k] = np.float32(1.0 / cell)
            k += 1
        if fs2 - s2 > 1e-3:
            weight[d, k] = np.float32(min(min(fs2 - s2, 1.0), cell) / cell)
            k += 1
        count[d] = k
    return first, count, weight


@numba.njit(cache=True, nogil=True)
def _row_pass(transposed: np.ndarray, first, count, weight) -> np.ndarray:
    """(source width x height) uint8 -> (target width x height) float32 row sums."""
    height = transposed.shape[1]
    out = np.empty((first.shape[0], height), np.float32)
    for d in range(first.shape[0]):
        s = first[d]
        w = weight[d, 0]
        for y in range(height):
            out[d, y] = np.float32(transposed[s, y]) * w
        for k in range(1, count[d]):
            w = weight[d, k]
            for y in range(height):
                out[d, y] += np.float32(transposed[s + k, y]) * w
    return out


@numba.njit(cache=True, nogil=True)
def _column_pass(rows: np.ndarray, first, count, weight) -> np.ndarray:
    """(source height x target width) float32 -> (target height x target width) uint8."""
    width = rows.shape[1]
    out = np.empty((first.shape[0], width), np.uint8)
    acc = np.empty(width, np.float32)
    for d in range(first.shape[0]):
        s = first[d]
        w = weight[d, 0]
        for x in range(width):
            acc[x] = w * rows[s, x]
        for k in range(1, count[d]):
            w = weight[d, k]
            for x in range(width):
                acc[x] += w * rows[s + k, x]
        for x in range(width):
            out[d, x] = np.uint8(min(max(np.rint(acc[x]), 0.0), 255.0))
    return out


def _integer_factor(source_size: int, target_size: int) -> bool:
    scale = 1.0 / (target_size / source_size)
    return abs(scale - round(scale)) < np.finfo(np.float64).eps


def area_downscale(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`cv2.resize(gray, size, interpolation=cv2.INTER_AREA)` for an 8-bit single-channel image
    and a target (width, height) no larger than it on either axis; same output, faster."""
    height, width = gray.shape
    target_width, target_height = size
    if (
        target_width > width
        or target_height > height
        or (_integer_factor(width, target_width) and _integer_factor(height, target_height))
    ):
        # Enlarging is not INTER_AREA's area path; integer factors take OpenCV's fast path.
        return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    gray = np.ascontiguousarray(gray)
    rows = _row_pass(cv2.transpose(gray), *_area_weights(width, target_width))
    return _column_pass(cv2.transpose(rows), *_area_weights(height, target_height))


def warm_up() -> None:
    """Compile the kernels, or load them from numba's cache (~0.5 s), before timing-sensitive or
    parallel work: otherwise the first non-integer downscale of each process pays for it."""
    area_downscale(np.zeros((3, 3), np.uint8), (2, 2))
