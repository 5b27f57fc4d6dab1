"""The SIIM-ACR run-length code, vectorized.

A code is space-separated ``start length`` pairs over the image flattened column-major (the transpose of numpy's
default order). The first start is a 0-based absolute offset; every later start is *relative*: the number of
background pixels after the end of the previous run. ``-1`` (or an empty string) means no mask. Some tools write
absolute starts instead; ``mode="auto"`` tells the two apart and prefers the relative reading when it is valid.
"""

from __future__ import annotations

from typing import Iterable, Literal, Sequence

import numpy as np

from dfgan.core.errors import InputError

Mode = Literal["auto", "relative", "absolute"]
EMPTY_CODES = frozenset({"", "-1"})


class RLEError(InputError):
    """A run-length code that cannot be decoded; the message names the ImageId and, where known, the CSV row."""


class RLEOverrunError(RLEError):
    """A code whose runs reach past the image: ``end`` is the pixel it reaches, ``n_pixels`` the image's H*W."""

    def __init__(self, message: str, end: int = 0, n_pixels: int = 0) -> None:
        super().__init__(message)
        self.end, self.n_pixels = end, n_pixels


def _where(image_id: str, row: int | None) -> str:
    return f"ImageId {image_id}" + ("" if row is None else f" (CSV row {row})")


def is_empty_code(code: str | None) -> bool:
    """True for the codes meaning 'no pneumothorax': ``-1``, empty, or missing."""
    return code is None or code.strip() in EMPTY_CODES


def _is_int(token: str) -> bool:
    try:
        np.int64(int(token))
    except (ValueError, OverflowError):
        return False
    return True


def parse_pairs(code: str, image_id: str = "?", row: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split a code into int64 ``starts`` and ``lengths`` exactly as written (no relative/absolute reading yet)."""
    tokens = code.split()
    if len(tokens) % 2:
        raise RLEError(f"{_where(image_id, row)}: odd number of tokens ({len(tokens)}) in the run-length code")
    try:
        values = np.array(tokens, dtype=np.int64)  # numpy parses decimal strings in C: twice as fast as int()
    except (ValueError, OverflowError):
        bad = next((t for t in tokens if not _is_int(t)), "?")
        raise RLEError(f"{_where(image_id, row)}: non-integer token {bad!r} in the run-length code") from None
    starts, lengths = values[0::2], values[1::2]
    if (lengths < 0).any():
        raise RLEError(f"{_where(image_id, row)}: negative run length {int(lengths.min())}")
    if (starts < 0).any():
        raise RLEError(f"{_where(image_id, row)}: negative start {int(starts.min())}")
    return starts, lengths


def _relative_to_absolute(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Absolute starts of a relative code: each start is offset by every earlier gap and run."""
    previous_lengths = np.concatenate(([0], np.cumsum(lengths[:-1])))
    return np.cumsum(starts) + previous_lengths


def _valid_absolute(starts: np.ndarray, lengths: np.ndarray, n_pixels: int) -> bool:
    """Absolute starts must be non-overlapping and increasing, and every run must end inside the image."""
    ends = starts + lengths
    return bool((ends <= n_pixels).all() and (starts[1:] >= ends[:-1]).all())


def code_reading(code: str, n_pixels: int, image_id: str = "?", row: int | None = None) -> str:
    """How a code can be read over ``n_pixels``: ``relative``, ``absolute``, ``both`` or ``empty``.

    A whole table is written by one tool, so a reader can settle the mode per table: any ``absolute``-only row
    means the ambiguous (``both``) rows are absolute too. Raises :class:`RLEError` when neither reading fits.
    """
    if is_empty_code(code):
        return "empty"
    starts, lengths = parse_pairs(code, image_id, row)
    relative = _valid_absolute(_relative_to_absolute(starts, lengths), lengths, n_pixels)
    absolute = _valid_absolute(starts, lengths, n_pixels)
    if relative and absolute:
        return "both"
    if relative or absolute:
        return "relative" if relative else "absolute"
    absolute_runs(code, n_pixels, image_id, row, "auto")  # raises the precise error
    raise AssertionError("unreachable")


def absolute_runs(
    code: str,
    n_pixels: int,
    image_id: str = "?",
    row: int | None = None,
    mode: Mode = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Absolute (start, length) runs of one code over ``n_pixels`` pixels, validated."""
    if mode not in ("auto", "relative", "absolute"):
        raise ValueError(f"unknown RLE mode {mode!r}; expected auto, relative or absolute")
    if is_empty_code(code):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts, lengths = parse_pairs(code, image_id, row)
    if mode in ("auto", "relative"):
        relative = _relative_to_absolute(starts, lengths)
        if _valid_absolute(relative, lengths, n_pixels):
            return relative, lengths
        relative_end = int((relative + lengths).max())
        if mode == "relative" or not _valid_absolute(starts, lengths, n_pixels):
            # A relative reading can only fail by running past the image: report that, in SIIM-ACR's own reading.
            raise RLEOverrunError(
                f"{_where(image_id, row)}: relative runs end at pixel {relative_end}, past H*W = {n_pixels}",
                relative_end,
                n_pixels,
            )
    if _valid_absolute(starts, lengths, n_pixels):
        return starts, lengths
    end = int((starts + lengths).max())
    if end > n_pixels:
        raise RLEOverrunError(
            f"{_where(image_id, row)}: runs end at pixel {end}, past H*W = {n_pixels} (read as {mode})", end, n_pixels
        )
    raise RLEError(f"{_where(image_id, row)}: absolute starts overlap or decrease (read as {mode})")


def _paint_runs(starts: np.ndarray, lengths: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (H, W) uint8 mask with the given absolute column-major runs set to 1 (overlaps allowed)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    total = int(lengths.sum())
    if total:
        # Pixel k of the concatenated runs is run_start + (k - pixels before that run): one repeat, one arange.
        flat = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
        # Scatter straight into row-major order (column-major index = col * H + row): transposing a whole
        # 1024x1024 array instead would cost more than everything else here.
        columns, rows = np.divmod(flat, height)
        mask[rows, columns] = 1
    return mask


def rle_decode(
    code: str,
    height: int,
    width: int,
    image_id: str = "?",
    *,
    mode: Mode = "auto",
    row: int | None = None,
) -> np.ndarray:
    """Decode one code to a (height, width) uint8 mask in {0, 1}; ``-1``/empty gives an empty mask."""
    starts, lengths = absolute_runs(code, height * width, image_id, row, mode)
    return _paint_runs(starts, lengths, height, width)


decode = rle_decode


def decode_union(
    codes: Iterable[str],
    height: int,
    width: int,
    image_id: str = "?",
    *,
    mode: Mode = "auto",
    rows: Sequence[int] | None = None,
) -> np.ndarray:
    """The union of several codes of one image (one CSV row per region); ``rows`` name them in errors."""
    codes = list(codes)
    row_numbers: Sequence[int | None] = rows if rows is not None else [None] * len(codes)
    if len(row_numbers) != len(codes):
        raise ValueError(f"decode_union({image_id}): {len(codes)} codes but {len(row_numbers)} row numbers")
    runs = [absolute_runs(c, height * width, image_id, r, mode) for c, r in zip(codes, row_numbers)]
    if not runs:
        return np.zeros((height, width), np.uint8)
    starts = np.concatenate([s for s, _ in runs])
    lengths = np.concatenate([n for _, n in runs])
    return _paint_runs(starts, lengths, height, width)


def mask_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute column-major (start, length) runs of the nonzero pixels of a 2-D mask."""
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects a 2-D mask, got shape {mask.shape}")
    flat = (np.asarray(mask).T.reshape(-1) != 0).view(np.int8)
    edges = np.diff(np.concatenate(([0], flat, [0])).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return starts.astype(np.int64), (ends - starts).astype(np.int64)


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask (nonzero = foreground) in the relative SIIM-ACR form; ``-1`` when empty."""
    starts, lengths = mask_runs(mask)
    if len(starts) == 0:
        return "-1"
    gaps = starts.copy()
    gaps[1:] = starts[1:] - (starts[:-1] + lengths[:-1])
    pairs = np.empty(2 * len(starts), dtype=np.int64)
    pairs[0::2], pairs[1::2] = gaps, lengths
    return " ".join(map(str, pairs.tolist()))


encode = rle_encode
