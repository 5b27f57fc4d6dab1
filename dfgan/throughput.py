"""Timed steps of each model kind, through the code the stages run, and the step counts a params profile implies.

The benchmarks (``benchmarks/bench_gan_step.py``, ``bench_seg_step.py``) and the wall-time estimate
(``benchmarks/estimate.py``) are thin command lines over this module; the tests run it at the paper's shapes.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from dfgan.acceleration import adam
from dfgan.fid import FIDLoss
from dfgan.gan import (
    FidTerm, GanSettings, autocast_context, build_models, fid_term_for, generate, make_inputs, train_step,
)
from dfgan.inception import FEATURE_DIM
from dfgan.prepared import validation_count
from dfgan.segmentation import BceDiceLoss, build_training_model, make_schedule, train_batches
from dfgan.training_sets import conditions_from_params, parse_condition

PRECISIONS = ("fp32", "bf16")


def device_name(device: torch.device) -> str:
    """The device as a benchmark reports it, with the torch version."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"cpu, {torch.get_num_threads()} threads, torch {torch.__version__}"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(step: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``step`` over ``repeats`` calls after ``warmup`` untimed ones (allocation, autotuning,
    compilation)."""
    for _ in range(warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def random_fid_term(extractor: torch.nn.Module, device: torch.device, seed: int = 0) -> FidTerm:
    """The FID loss against fixed feature-like real statistics (non-negative, correlated): a step's cost does not
    depend on which real statistics it fits."""
    rng = np.random.default_rng(seed)
    real = np.abs(rng.normal(size=(FEATURE_DIM + 64, FEATURE_DIM))).astype(np.float32) * 0.4
    return FidTerm(extractor, FIDLoss(real.mean(0), np.cov(real, rowvar=False)).to(device))


def gan_params_for(
    params: dict[str, Any], image_size: int, batch: int, precision: str, compile_mode: str,
    inception_bf16: bool = False,
) -> dict:
    """A copy of ``params`` with the image size, batch, precision (fp32 | bf16 autocast), compile mode and the
    FID loss's Inception precision (``gan.inception_bf16``, effective with bf16 on CUDA) set."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got '{precision}'")
    params = copy.deepcopy(params)
    params["data"]["image_size"] = int(image_size)
    params["gan"].update(
        batch_size=int(batch), amp=precision == "bf16", amp_dtype="bfloat16", compile=compile_mode,
        inception_bf16=bool(inception_bf16),
    )
    return params


def time_gan_step(
    params: dict[str, Any], variant: str, device: torch.device, fid_term: FidTerm, repeats: int, warmup: int = 1
) -> float:
    """Seconds per training step (D then G update) of one GAN variant, as ``train_gan`` runs it (``fid_term``'s
    extractor and statistics, with the Inception precision of the params)."""
    s = GanSettings.from_params(params, variant, seed=0)
    fid_term = fid_term_for(s, fid_term.extractor, fid_term.fid_loss, device)
    torch.manual_seed(0)
    models = build_models(s, device)
    y = torch.rand(s.batch_size, 1, s.image_size, s.image_size, device=device) * 2 - 1
    x = make_inputs(y, (torch.rand_like(y) > 0.9).float(), s.mask_channel)
    autocast = autocast_context(s, device)
    return median_seconds(lambda: train_step(models, x, y, s, fid_term, autocast), device, repeats, warmup)


def time_synthesis_batch(
    params: dict[str, Any], device: torch.device, extractor: torch.nn.Module, repeats: int, warmup: int = 1
) -> float:
    """Seconds for one synthesis batch: G on ``gan.batch_size`` inputs in train mode, then their Inception features
    (what the synthesize stage does per batch, FID/KID included)."""
    s = GanSettings.from_params(params, "dfgan", seed=0)
    generator = build_models(s, device).generator
    y = torch.rand(s.batch_size, 1, s.image_size, s.image_size) * 2 - 1
    x = make_inputs(y, (torch.rand_like(y) > 0.9).float(), s.mask_channel)

    def batch() -> None:
        fake = generate(generator, x, s.batch_size, True, device)
        with torch.no_grad():
            extractor(fake.to(device))

    return median_seconds(batch, device, repeats, warmup)


def time_seg_step(
    seg_params: dict[str, Any], image_size: int, device: torch.device, repeats: int, precision: str = "fp32",
    warmup: int = 1,
) -> float:
    """Seconds per U-Net++ optimizer step at ``seg.batch_size`` (model, loss and optimizer as ``fit`` builds them).

    ``bf16`` wraps the step in CUDA autocast (measured only; training itself runs in float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got '{precision}'")
    torch.manual_seed(0)
    model = build_training_model(seg_params, device)
    loss_fn = BceDiceLoss(seg_params["bce_weight"], seg_params["dice_weight"])
    optimizer = adam(model.parameters(), device, lr=float(seg_params["lr"]))
    batch = int(seg_params["batch_size"])
    images = torch.rand(batch, 1, image_size, image_size) * 2 - 1
    masks = (torch.rand(batch, 1, image_size, image_size) > 0.9).float()
    use_bf16 = precision == "bf16" and device.type == "cuda"

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            train_batches(model, iter([(images, masks)]), loss_fn, optimizer, device)

    return median_seconds(step, device, repeats, warmup)


# ----------------------------------------------------------------------------------------------------------------------
# What a profile asks for


@dataclass(frozen=True)
class PlannedWork:
    """Counts of one stage kind over the whole profile: ``units`` of ``unit`` (GAN steps, synthesis batches, ...)."""

    stage: str
    unit: str
    units: int
    runs: int  # DVC stage runs (matrix items) it is spread over


def training_images(params: dict[str, Any], size: int) -> int:
    """The images a size trains on (its pool less the fixed validation images)."""
    return size - validation_count(size, float(params["data"]["val_fraction"]))


def planned_work(params: dict[str, Any]) -> list[PlannedWork]:
    """Step counts the profile implies. GAN: epochs x ceil(N_train / batch) per size, variant and GAN seed;
    synthesis: 2 N_train images (plain and flipped lesions) in batches of ``gan.batch_size`` per size, variant and
    seed; U-Net++: rounds x steps per round per size, condition, augmentation and seed."""
    gan, seg = params["gan"], params["seg"]
    sizes, variants, gan_seeds = [int(s) for s in params["sizes"]], list(params["variants"]), list(gan["seeds"])
    epochs, gan_batch = int(gan["n_epochs"]) + int(gan["n_epochs_decay"]), int(gan["batch_size"])
    gan_steps_per_variant = synth_batches = seg_steps = 0
    conditions = conditions_from_params(params)
    for size in sizes:
        n_train = training_images(params, size)
        gan_steps_per_variant += epochs * math.ceil(n_train / gan_batch) * len(gan_seeds)
        synth_batches += 2 * math.ceil(n_train / gan_batch) * len(variants) * len(gan_seeds)
        schedule = make_schedule(seg, n_train)
        for condition in conditions:
            parsed = parse_condition(condition)
            n_condition = n_train * (parsed.real_copies + parsed.copies)
            per_round = schedule.steps_per_round or math.ceil(n_condition / schedule.batch_size)
            seg_steps += schedule.rounds * per_round * 2 * len(seg["seeds"])  # aug: none and classic
    runs = len(sizes) * len(variants) * len(gan_seeds)
    return [
        *[PlannedWork(f"train_gan ({v})", "GAN steps", gan_steps_per_variant, runs // len(variants)) for v in variants],
        PlannedWork("synthesize", "synthesis batches", synth_batches, runs),
        PlannedWork("seg (all conditions)", "U-Net++ steps", seg_steps, len(sizes) * len(conditions) * 2),
    ]
