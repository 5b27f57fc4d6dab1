"""Conversions between stored uint8 images and network tensors, and PNG grids for people to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch


def uint8_to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) in [0, 255] -> float32 tensor (N, 1, H, W) in [-1, 1], as pix2pix expects."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).float()
    return (tensor / 127.5 - 1.0).unsqueeze(1)


def unit_to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float tensor (N, 1, H, W) in [-1, 1] -> uint8 (N, H, W), rounding and clipping."""
    array = ((tensor.detach().float().cpu().squeeze(1) + 1.0) * 127.5).round().clamp(0, 255)
    return array.to(torch.uint8).numpy()


def outline(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 64, 64)) -> np.ndarray:
    """A grayscale uint8 image as RGB with the mask's contour drawn on it."""
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    thickness = max(1, image.shape[0] // 256)
    cv2.drawContours(rgb, contours, -1, color, thickness)
    return rgb


def save_grid(
    rows: Sequence[Sequence[np.ndarray]],
    path: str | Path,
    row_labels: Sequence[str] | None = None,
    tile: int | None = None,
) -> Path:
    """Save a grid of uint8 tiles (grayscale HxW or RGB HxWx3) as one PNG, optionally labelling each row.

    Tiles are resized to ``tile`` pixels square (default: the first tile's height).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows or not rows[0]:
        raise ValueError(f"save_grid({path}): nothing to draw")
    size = tile or rows[0][0].shape[0]
    label_width = 0 if row_labels is None else max(8 * max(len(s) for s in row_labels) + 8, 0)
    n_cols = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (size + 2), label_width + n_cols * (size + 2), 3), 24, np.uint8)
    for r, row in enumerate(rows):
        y = r * (size + 2)
        for c, tile_image in enumerate(row):
            rgb = tile_image if tile_image.ndim == 3 else cv2.cvtColor(tile_image, cv2.COLOR_GRAY2RGB)
            rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
            x = label_width + c * (size + 2)
            canvas[y : y + size, x : x + size] = rgb
        if row_labels is not None:
            cv2.putText(canvas, row_labels[r], (4, y + size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1)
    cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return path
