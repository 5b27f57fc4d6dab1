"""Synthetic training images from a trained generator (Section 3.2, Tables 1 and 2).

For the training images of one size (the pool minus its validation rows: a validation lesion never becomes a
synthetic image), G turns each disease area (the real pixels inside the mask) into a whole
synthetic image with exactly that mask: N R + N S. The same for the horizontally flipped disease areas, with the
flipped masks, gives N more (R + 2S, Table 2). With ``synth.paste_lesion`` the real lesion pixels are copied back
into the output so that the lesion is undistorted.

FID and KID of the synthetic images are measured against the real training images of that size and against the
held-out test images, with the cached real features of the ``fid_stats`` stage.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dfgan.core.array_io import save_npz
from dfgan.core.imaging import outline, save_grid, unit_to_uint8
from dfgan.core.paths import FID_STATS, SynthRunPaths, fid_test_stats, fid_train_stats
from dfgan.core.runtime import resolve_device
from dfgan.core.settings import Settings, SynthSettings
from dfgan.data.prepared_arrays import load_prepared
from dfgan.gan.fid import compute_features, frechet_distance, kid, load_stats
from dfgan.gan.generator import generate, load_generator
from dfgan.gan.inception import load_inception
from dfgan.gan.pairs import make_pairs
from dfgan.gan.synthetic_sets import PREVIEW_FILE, SYNTHETIC_FILE


@dataclass(frozen=True)
class SynthesisConfig:
    """What the synthesize stage reads: the ``synth`` section, G's batch size (``gan.batch_size``, the size it was
    trained with) and the ``fid`` keys of the synthetic sets' FID and KID (their features run on ``synth.device``)."""

    synth: SynthSettings
    gan_batch_size: int
    fid_batch_size: int
    eigen_floor: float
    inception_path: str | None
    kid_subset_size: int
    kid_subsets: int
    kid_seed: int

    @classmethod
    def of(cls, settings: Settings) -> SynthesisConfig:
        fid = settings.fid
        return cls(
            synth=settings.synth,
            gan_batch_size=settings.gan.batch_size,
            fid_batch_size=fid.batch_size,
            eigen_floor=fid.eigen_floor,
            inception_path=fid.inception_path,
            kid_subset_size=fid.kid_subset_size,
            kid_subsets=fid.kid_subsets,
            kid_seed=fid.seed,
        )


def synthesis_seed(synth_seed: int, gan_seed: int) -> int:
    """The dropout-noise seed of one GAN seed's synthetic set (independent streams for independent GANs)."""
    return int(np.random.SeedSequence([synth_seed, gan_seed]).generate_state(1)[0])


def synthesize_images(
    generator: nn.Module,
    images: np.ndarray,
    masks: np.ndarray,
    mask_channel: bool,
    train_mode: bool,
    paste_lesion: bool,
    batch_size: int,
    seed: int,
    device: torch.device,
) -> np.ndarray:
    """uint8 (n, S, S) synthetic images, one per (image, mask) disease area; seeded (dropout noise in train mode)."""
    inputs, _ = make_pairs(images, masks, mask_channel, torch.device("cpu"))
    devices = [device] if device.type == "cuda" else []
    # A private RNG stream: the seed fixes the dropout noise without touching the caller's global state.
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        torch.manual_seed(seed)
        fake = unit_to_uint8(generate(generator, inputs, batch_size, train_mode, device))
    if paste_lesion:
        fake = np.where(masks > 0, images, fake).astype(np.uint8)
    return fake


def distribution_metrics(
    features: np.ndarray, reference: np.ndarray, mu: np.ndarray, sigma: np.ndarray, config: SynthesisConfig
) -> dict[str, float]:
    """FID and KID (mean, std) of synthetic features against one real reference set."""
    kid_mean, kid_std = kid(features, reference, config.kid_subset_size, config.kid_subsets, config.kid_seed)
    return {
        "fid": frechet_distance(mu, sigma, features.astype(np.float64), config.eigen_floor),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
    }


def save_preview(
    path: Path,
    inputs: np.ndarray,
    synthetic: np.ndarray,
    flipped_inputs: np.ndarray,
    flipped_synthetic: np.ndarray,
    real: np.ndarray,
    masks: np.ndarray,
    count: int,
) -> None:
    count = min(count, len(real))
    flipped_masks = masks[:, :, ::-1]
    rows = [
        [inputs[i] for i in range(count)],
        [outline(synthetic[i], masks[i]) for i in range(count)],
        [flipped_inputs[i] for i in range(count)],
        [outline(flipped_synthetic[i], np.ascontiguousarray(flipped_masks[i])) for i in range(count)],
        [outline(real[i], masks[i]) for i in range(count)],
    ]
    save_grid(rows, path, row_labels=["input", "synthetic", "flip input", "flip synth", "real"])


def synthesize(
    prepared_dir: str | Path,
    size: int,
    variant: str,
    seed: int,
    config: SynthesisConfig,
    files: SynthRunPaths,
    stats_dir: str | Path | None = None,
    extractor: nn.Module | None = None,
) -> dict[str, Any]:
    """Generate the primary and flipped synthetic sets of GAN seed ``seed``, with preview and FID/KID metrics.

    G runs on batches of ``gan.batch_size`` (the size it was trained with; see :func:`dfgan.gan.generator.generate`).
    The noise seed combines ``synth.seed`` with the GAN seed (:func:`synthesis_seed`).

    ``files`` are the generator it reads and what it writes (:func:`dfgan.core.paths.synth_run`); ``stats_dir``
    defaults to :data:`dfgan.core.paths.FID_STATS`; ``extractor`` (a test hook) replaces the Inception network and
    must be the one that produced the cached real features.
    """
    synth = config.synth
    model_dir, out_dir, metrics_path = files.model_dir, files.out_dir, files.metrics_path
    stats_dir = Path(stats_dir) if stats_dir is not None else FID_STATS
    device = resolve_device(synth.device)
    started = time.perf_counter()

    data = load_prepared(prepared_dir).train(size)
    images, masks = np.ascontiguousarray(data.images), np.ascontiguousarray(data.masks)
    flipped_images = np.ascontiguousarray(images[:, :, ::-1])
    flipped_masks = np.ascontiguousarray(masks[:, :, ::-1])
    generator, spec = load_generator(model_dir, device)
    if spec["image_size"] != images.shape[-1]:
        raise ValueError(f"{model_dir}: G was trained at {spec['image_size']} px, the prepared images are "
                         f"{images.shape[-1]} px: re-run train_gan")

    def run(source_images: np.ndarray, source_masks: np.ndarray, noise_seed: int) -> np.ndarray:
        return synthesize_images(
            generator, source_images, source_masks, spec["mask_channel"], synth.train_mode, synth.paste_lesion,
            config.gan_batch_size, noise_seed, device,
        )

    noise_seed = synthesis_seed(synth.seed, seed)
    synthetic = run(images, masks, noise_seed)
    # A different stream for the flipped set, so its dropout noise is not the mirror of the primary set's.
    flipped_synthetic = run(flipped_images, flipped_masks, noise_seed + 1)

    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    save_npz(
        out_dir / SYNTHETIC_FILE,
        compress=True,
        images=synthetic,
        masks=masks.astype(np.uint8),
        source_rows=data.rows.astype(np.int64),
        flipped_images=flipped_synthetic,
        flipped_masks=flipped_masks.astype(np.uint8),
        flipped_source_rows=data.rows.astype(np.int64),
    )
    inputs = unit_to_uint8(make_pairs(images, masks, False, torch.device("cpu"))[0])
    flipped_inputs = unit_to_uint8(make_pairs(flipped_images, flipped_masks, False, torch.device("cpu"))[0])
    save_preview(out_dir / PREVIEW_FILE, inputs, synthetic, flipped_inputs, flipped_synthetic, images, masks,
                 synth.preview_count)

    # Distribution metrics against the cached real features (same extractor, same preprocessing).
    extractor = extractor if extractor is not None else load_inception(device, config.inception_path)
    batch = config.fid_batch_size
    features = compute_features(synthetic, extractor, batch, device, desc="synthetic")
    flipped_features = compute_features(flipped_synthetic, extractor, batch, device, desc="flipped")
    both = np.concatenate([features, flipped_features])
    train_ref, test_ref = load_stats(fid_train_stats(size, stats_dir)), load_stats(fid_test_stats(stats_dir))
    metrics: dict[str, Any] = {
        "size": size, "variant": variant, "seed": seed, "images": len(synthetic), "device": str(device)
    }
    for name, feats in (("primary", features), ("primary_flipped", both)):
        metrics[name] = {
            "train": distribution_metrics(feats, train_ref.features, train_ref.mu, train_ref.sigma, config),
            "test": distribution_metrics(feats, test_ref.features, test_ref.mu, test_ref.sigma, config),
        }
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics
