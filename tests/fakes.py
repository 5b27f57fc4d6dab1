"""Small fake inputs shared by the tests: prepared datasets with blob lesions, and a tiny frozen feature extractor."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from dfgan.core import speed
from dfgan.data.prepared_arrays import save_prepared, split_pools


def blob_xrays(
    n: int,
    image_size: int,
    seed: int,
    lesion_x: tuple[float, float] = (0.2, 0.8),
    lesion_radius: tuple[float, float] = (0.08, 0.2),
    lesion_contrast: float = -60.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth noisy 'X-rays' with one round lesion each (darker or brighter by ``lesion_contrast``); its mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:image_size, :image_size] / image_size
    images, masks = [], []
    for i in range(n):
        base = 120 + 50 * np.sin(6 * xx + i) * np.cos(4 * yy) + rng.normal(0, 8, (image_size, image_size))
        cy, cx = rng.uniform(0.2, 0.8), rng.uniform(*lesion_x)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(*lesion_radius) ** 2).astype(np.uint8)
        images.append(np.clip(base + lesion_contrast * mask, 0, 255).astype(np.uint8))
        masks.append(mask)
    return np.stack(images), np.stack(masks)


def save_fake_prepared(
    directory: Path,
    images: np.ndarray,
    masks: np.ndarray,
    n_train: int,
    subset_sizes: Sequence[int],
    seed: int = 0,
    val_fraction: float = 0.0,
) -> Path:
    """The prepared-data contract over the given arrays: rows [0, n_train) are the pools (nested prefixes, each split
    into train and val as ``prepare`` does), the rest test."""
    n = len(images)
    index = pd.DataFrame(
        {
            "row": range(n),
            "image_id": [f"img{i}" for i in range(n)],
            "dicom_path": "none",
            "mask_fraction": [float(m.mean()) for m in masks],
            "split": ["train"] * n_train + ["test"] * (n - n_train),
            "train_rank": list(range(n_train)) + [-1] * (n - n_train),
        }
    )
    train_rows, val_rows = split_pools({int(k): np.arange(k) for k in subset_sizes}, val_fraction, seed)
    save_prepared(directory, images, masks, index, np.arange(n_train, n), train_rows, seed, val_rows, val_fraction)
    return directory


class TinyExtractor(nn.Module):
    """A frozen stand-in for Inception with a few features, so loops over it take milliseconds."""

    def __init__(self, n_features: int = 16) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(1, n_features, 5, stride=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator) * 0.3)
            self.conv.bias.zero_()
        self.calls = 0
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.tanh(self.conv(images.float())).mean(dim=(2, 3)) * 10


# ----------------------------------------------------------------------------------------------------------------------
# CUDA graphs on a CPU: the torch.cuda calls CapturedStep makes, faked


class FakeGraph:
    """Stands in for torch.cuda.CUDAGraph: the capture runs the step once (a real capture only records it); a replay
    is counted and, when ``rerun`` is set (:func:`fake_cuda_graphs` with ``emulate``), runs the step again into the
    captured outputs, as a real replay fills the graph's output buffers."""

    def __init__(self) -> None:
        self.replayed = 0
        self.rerun: Callable[[], None] | None = None

    def replay(self) -> None:
        self.replayed += 1
        if self.rerun is not None:
            self.rerun()


class FakeStream:
    def wait_stream(self, other: object) -> None:
        pass


def fake_cuda_graphs(
    monkeypatch: Any, capture_error: Exception | None = None, emulate: bool = False
) -> list[FakeGraph]:
    """Fake the torch.cuda calls of :class:`dfgan.core.speed.CapturedStep` for a CPU (``monkeypatch``: pytest's);
    ``capture_error`` is raised inside the capture. ``emulate``: each replay after the capture runs the step on the
    static inputs and copies its results into the static outputs, so a captured run trains as a replayed graph
    would. Returns the graphs made."""
    graphs: list[FakeGraph] = []

    def new_graph() -> FakeGraph:
        graphs.append(FakeGraph())
        return graphs[-1]

    @contextlib.contextmanager
    def capture(graph: FakeGraph) -> Iterator[None]:
        if capture_error is not None:  # before the body: a failed capture has done none of the step's work
            raise capture_error
        yield

    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "current_stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", new_graph)
    monkeypatch.setattr(torch.cuda, "graph", capture)
    if emulate:
        original = speed.CapturedStep._capture

        def capture_then_rerun(self: speed.CapturedStep, inputs: tuple[torch.Tensor, ...]) -> bool:
            captured = original(self, inputs)  # its own replay is a no-op: the fake capture ran the step already
            if captured:
                def rerun() -> None:
                    fresh = self.step(*self.static_inputs)
                    torch.utils._pytree.tree_map(lambda old, new: old.copy_(new), self.static_outputs, fresh)

                self.graph.rerun = rerun  # type: ignore[union-attr]
            return captured

        monkeypatch.setattr(speed.CapturedStep, "_capture", capture_then_rerun)
    return graphs
