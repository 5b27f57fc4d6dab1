"""Benchmark: the classic U-Net++ augmentation per sample on the CPU (DataLoader workers) against batched on the
device, and whether each keeps up with the training step it feeds.

    python -m benchmarks.bench_augment [--params params_paper.yaml] [--size 256] [--images 512] [--workers 0 2 4 8]
                                       [--device auto]

Measures images/s of:

- ``per-sample``: what training runs now: ``SegmentationDataset`` with ``build_augmentation("classic", ...)`` (the
  torchvision v2 pipeline, one image at a time) through a ``DataLoader`` of ``seg.batch_size`` with
  ``loader_options(seed, workers, device)`` (worker processes with per-worker seeds, pinned memory on CUDA), for
  each ``--workers`` count, until ``--images`` images were delivered and copied to the device (``non_blocking``,
  then synchronized). The first batch (worker start-up) is not timed; it is reported as start-up seconds.
- ``batched``: the same uint8 images resident on the device, converted to [-1, 1] and augmented by
  ``build_batch_classic_augmentation`` in batches of ``seg.batch_size`` with a generator on the device (start-up:
  the copy of the set to the device and the first, untimed batch).
- for reference, the U-Net++ optimizer step (``time_seg_step``, random encoder weights) in fp32 and, on CUDA,
  bf16 autocast: images/s = batch / seconds per step. A path "keeps up" when its images/s is at least the step's.

The images are synthetic (seeded uint8 noise, a random disk as the mask), so no data is needed.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from benchmarks.throughput import device_name, synchronize, time_seg_step
from dfgan.core.params_file import load_settings
from dfgan.core.runtime import resolve_device
from dfgan.core.settings import ClassicAugmentation
from dfgan.core.speed import configure_determinism
from dfgan.seg.augment import build_augmentation, build_batch_classic_augmentation
from dfgan.seg.config import SegConfig
from dfgan.seg.fit import SegmentationDataset, loader_options


@dataclass(frozen=True)
class Rate:
    path: str
    workers: str
    images_per_s: float
    startup_s: float | None


def synthetic_set(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 noise images (n, size, size) and {0, 1} masks, each a disk of random centre and radius."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    centre = rng.uniform(0.2, 0.8, size=(n, 2, 1, 1)) * size
    radius = rng.uniform(0.05, 0.25, size=(n, 1, 1)) * size
    masks = ((yy - centre[:, 0]) ** 2 + (xx - centre[:, 1]) ** 2 <= radius**2).astype(np.uint8)
    return images, masks


def delivery_rate(
    deliver: Callable[[], int], device: torch.device, target: int, started: float
) -> tuple[float, float]:
    """(images/s after the first batch, seconds from ``started`` to the first batch) of a batch source whose
    ``deliver`` returns the images it produced."""
    deliver()
    synchronize(device)
    startup = time.perf_counter() - started
    delivered, started = 0, time.perf_counter()
    while delivered < target:
        delivered += deliver()
    synchronize(device)
    return delivered / (time.perf_counter() - started), startup


def time_per_sample(
    images: np.ndarray, masks: np.ndarray, classic: ClassicAugmentation, size: int, batch: int, workers: int,
    seed: int, device: torch.device, target: int,
) -> Rate:
    """The training path: per-sample torchvision augmentation through the DataLoader, batches copied to ``device``."""
    torch.manual_seed(seed)
    dataset = SegmentationDataset(images, masks, build_augmentation(classic, size))
    sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, **loader_options(seed, workers, device))
    started = time.perf_counter()
    batches = iter(loader)

    def deliver() -> int:
        image, mask = next(batches)
        image.to(device, non_blocking=True)
        mask.to(device, non_blocking=True)
        return len(image)

    rate, startup = delivery_rate(deliver, device, target, started)
    del batches, loader  # ends the persistent workers before the next count starts its own
    return Rate("per-sample", str(workers), rate, startup)


def time_batched(
    images: np.ndarray, masks: np.ndarray, classic: ClassicAugmentation, size: int, batch: int, seed: int,
    device: torch.device, target: int,
) -> Rate:
    """Images resident on ``device`` as uint8, converted and augmented a batch at a time on it."""
    augment = build_batch_classic_augmentation(classic, size)
    generator = torch.Generator(device=device).manual_seed(seed)
    started = time.perf_counter()
    on_device = torch.from_numpy(images).unsqueeze(1).to(device)
    mask_on_device = torch.from_numpy(masks).unsqueeze(1).to(device)
    n = len(on_device)
    position = 0

    def deliver() -> int:
        nonlocal position
        index = torch.arange(position, position + batch, device=device) % n
        position = (position + batch) % n
        image = on_device[index].float() / 127.5 - 1.0  # as dfgan.core.imaging.uint8_to_unit
        image, mask = augment(image, mask_on_device[index], generator)
        mask.float()
        return batch

    rate, startup = delivery_rate(deliver, device, target, started)
    return Rate("batched", "-", rate, startup)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--images", type=int, default=512, help="timed images per path (after the first batch)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4, 8], help="DataLoader worker counts")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=5, help="timed U-Net++ steps (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of this process (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = load_settings(args.params)
    configure_determinism(settings.runtime.deterministic)
    # Timing only: random weights, nothing to download.
    seg = dataclasses.replace(SegConfig.of(settings.seg, "classic"), encoder_weights=None)
    classic = settings.seg.augmentations.classic
    device = resolve_device(args.device)
    batch = seg.batch_size
    # Enough distinct images for the untimed first batch and the timed ones.
    images, masks = synthetic_set(args.images + batch, args.size, args.seed)
    print(f"device: {device_name(device)}; size {args.size}, batch {batch}, {args.images} timed images")

    rates = [
        time_per_sample(images, masks, classic, args.size, batch, w, args.seed, device, args.images)
        for w in args.workers
    ]
    rates.append(time_batched(images, masks, classic, args.size, batch, args.seed, device, args.images))
    steps = {"fp32": time_seg_step(seg, args.size, device, args.repeats, "fp32")}
    if device.type == "cuda":
        steps["bf16"] = time_seg_step(seg, args.size, device, args.repeats, "bf16")
    step_rates = {precision: batch / seconds for precision, seconds in steps.items()}

    keeps = "".join(f" {'keeps up ' + p:>13}" for p in step_rates)
    print(f"{'path':<12} {'workers':>7} {'images/s':>10} {'ms/image':>9} {'start-up s':>10}{keeps}")
    for rate in rates:
        verdicts = "".join(f" {'yes' if rate.images_per_s >= r else 'no':>13}" for r in step_rates.values())
        print(
            f"{rate.path:<12} {rate.workers:>7} {rate.images_per_s:>10.1f} {1000 / rate.images_per_s:>9.2f} "
            f"{rate.startup_s:>10.2f}{verdicts}"
        )
    for precision, rate in step_rates.items():
        print(f"{'step ' + precision:<12} {'-':>7} {rate:>10.1f} {1000 / rate:>9.2f} {'-':>10}")
    best = max(rates, key=lambda r: r.images_per_s)
    print(f"fastest: {best.path}" + (f" with {best.workers} workers" if best.workers != "-" else ""))


if __name__ == "__main__":
    main()
