"""The U-Net++ experiment of one training condition (Tables 1-2): every seed of ``seg.seeds`` trained, tested by
Dice on the held-out positives, and written as the run's metrics JSON and per-image CSV.

The conditions and the training set each assembles live in :mod:`dfgan.seg.training_sets`, one seed's fit in
:mod:`dfgan.seg.fit`, the network and its evaluation in :mod:`dfgan.seg.model`.

The validation images (for picking the best step) are fixed per training size by ``prepare`` (``PreparedData.val``):
no GAN, FID statistic or synthetic image ever came from them. Seed number k of ``seg.seeds`` (its position) reads
the synthetic set of GAN seed ``gan.seeds[k mod len(gan.seeds)]``, so the spread over seeds includes GAN training
variance. The test set is touched once per seed, by the selected model.

``seg.schedule``: ``steps`` gives every condition of one size the same number of optimizer steps and the same
validation points (``seg.epochs`` rounds of ``ceil(seg.budget_factor * n_real / batch_size)`` steps, batches drawn
by cycling through fresh permutations of the condition's training set), so a gain from synthetic images cannot be a
gain from training longer. ``epochs`` is the literal fixed-epoch protocol (``seg.epochs`` passes over the training
set, so R + S trains twice as many steps as R).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from dfgan.core.paths import SegRunPaths, live_plots
from dfgan.core.runtime import resolve_device, seed_everything
from dfgan.core.settings import ClassicAugmentation
from dfgan.core.speed import configure_determinism
from dfgan.core.training_log import TrainingLog, open_live
from dfgan.data.prepared_arrays import NotEnoughFresh, PreparedData, load_prepared
from dfgan.seg.augment import JointTransform, build_augmentation, identity_augmentation, seeded_batch_augmentation
from dfgan.seg.config import SegConfig
from dfgan.seg.dice import mean_and_sem
from dfgan.seg.fit import BatchAugmentation, FitResult, Schedule, fit, make_schedule, seg_cuda_graphs
from dfgan.seg.model import Evaluation, build_training_model, evaluate
from dfgan.seg.training_sets import REAL_FRESH, TrainingSet, assemble_training_set, gan_seed_for, uses_synthetic


def build_seed_augmentation(
    config: SegConfig, image_size: int, seed: int, device: torch.device
) -> tuple[JointTransform, BatchAugmentation | None]:
    """(per-sample augmentation for the DataLoader, batch augmentation on the device or None) of one seed.

    ``seg.augment_on: loader``: torchvision per sample, in the main process or ``seg.workers`` processes.
    ``device``: the same operations drawn per sample but applied to whole batches on the device
    (:func:`dfgan.seg.augment.seeded_batch_augmentation`); faster on a GPU (benchmarks/RESULTS.md), a different
    random draw than ``loader``, so results of the two differ by augmentation noise."""
    classic = config.augmentation
    if not isinstance(classic, ClassicAugmentation) or config.augment_on == "loader":
        return build_augmentation(classic, image_size), None
    return identity_augmentation, seeded_batch_augmentation(classic, image_size, seed + 2, device)


@dataclass(frozen=True)
class SeedRun:
    seed: int
    gan_seed: int | None  # the GAN whose synthetic images it trained on (None for real and real2x)
    data: TrainingSet
    schedule: Schedule
    fit: FitResult
    test: Evaluation


def run_seed(
    prepared: PreparedData,
    synthetic_root: str | Path,
    size: int,
    condition: str,
    config: SegConfig,
    seed: int,
    gan_seed: int,
    device: torch.device,
    live: TrainingLog | None,
    cuda_graphs: bool | None = None,
) -> SeedRun:
    """Assemble, train and test one seed; the seed fixes the initial weights, batch order and augmentation draws."""
    seed_everything(seed)
    data = assemble_training_set(prepared, synthetic_root, size, condition, gan_seed, seed=seed)
    schedule = make_schedule(config, len(prepared.train(size)))
    augmentation, batch_augmentation = build_seed_augmentation(config, int(data.train_images.shape[-1]), seed, device)
    model = build_training_model(config, device)
    fitted = fit(model, data, augmentation, config, schedule, seed, device, live, prefix=f"seed{seed}/",
                 batch_augmentation=batch_augmentation, cuda_graphs=cuda_graphs)
    test = prepared.test()
    evaluation = evaluate(
        model, np.asarray(test.images), np.asarray(test.masks), config.threshold, device, config.batch_size,
    )
    if live is not None:
        live.log_metric(f"seed{seed}/test_dice", evaluation.mean_dice, plot=False)
        live.log_metric(f"seed{seed}/best_step", fitted.best_step, plot=False)
    return SeedRun(seed, gan_seed if uses_synthetic(condition) else None, data, schedule, fitted, evaluation)


def per_image_table(runs: list[SeedRun], prepared: PreparedData) -> pd.DataFrame:
    """One row per (seed, test image): seed, gan_seed (-1 without a GAN), row, image_id (when the index has it), dice,
    empty_prediction, ..."""
    test = prepared.test()
    image_ids = _image_ids(prepared, test.rows)
    frames = []
    for run in runs:
        frame = pd.DataFrame(
            {
                "seed": run.seed,
                "gan_seed": -1 if run.gan_seed is None else run.gan_seed,  # -1: trained without GAN images
                "row": test.rows,
                "image_id": image_ids,
                "dice": run.test.dice,
                "empty_prediction": run.test.empty,
                "pred_fraction": run.test.pred_fraction,
                "target_fraction": np.asarray(test.masks).reshape(len(test), -1).mean(axis=1),
            }
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _image_ids(prepared: PreparedData, rows: np.ndarray) -> list[str]:
    index = prepared.index
    if "image_id" not in index.columns:
        return [""] * len(rows)
    lookup = index.set_index("row")["image_id"] if "row" in index.columns else index["image_id"]
    return [str(lookup.get(int(r), "")) for r in rows]


def condition_metrics(
    runs: list[SeedRun], size: int, condition: str, config: SegConfig, seconds: float
) -> dict[str, Any]:
    """The metrics JSON of one condition: Dice mean ± s.e. over seeds (each seed's Dice = mean over test images),
    and the training budget each seed got (optimizer steps, images seen, the selected step)."""
    per_seed = [run.test.mean_dice for run in runs]
    dice_mean, dice_sem = mean_and_sem(per_seed)
    first = runs[0]  # the counts and the schedule depend only on the size and the condition, not on the seed
    return {
        "size": int(size),
        "condition": condition,
        "aug": config.aug,
        "encoder": config.encoder,
        "seeds": [run.seed for run in runs],
        "gan_seed_per_seed": [run.gan_seed for run in runs],
        "dice_mean": dice_mean,
        "dice_sem": dice_sem,
        "dice_per_seed": per_seed,
        "empty_fraction": float(np.mean([run.test.empty.mean() for run in runs])),
        "empty_fraction_per_seed": [float(run.test.empty.mean()) for run in runs],
        "schedule": first.schedule.kind,
        "rounds": first.schedule.rounds,
        "steps_per_round": first.schedule.steps_per_round,
        "optimizer_steps": first.fit.steps,
        "optimizer_steps_per_seed": [run.fit.steps for run in runs],
        "images_seen": first.fit.images_seen,
        "rounds_run_per_seed": [run.fit.rounds_run for run in runs],
        "best_round_per_seed": [run.fit.best_round for run in runs],
        # Still improving when the budget ran out: the kept round is the schedule's last (see seg.epochs/patience).
        "best_round_last_share": float(np.mean([run.fit.best_round == run.schedule.rounds for run in runs])),
        "best_step_per_seed": [run.fit.best_step for run in runs],
        "val_dice_per_seed": [run.fit.best_val_dice if first.data.n_val else None for run in runs],
        "n_train_real": first.data.n_train_real,
        "n_train_synthetic": first.data.n_train_synthetic,
        "n_train_control": first.data.n_train_control,
        "n_train_fresh": first.data.n_train_fresh,
        "n_train": first.data.n_train,
        "n_val": first.data.n_val,
        "n_test": len(first.test.dice),
        "seconds": round(seconds, 2),
        "skipped": None,
    }


def skipped_metrics(size: int, condition: str, config: SegConfig, reason: str) -> dict[str, Any]:
    """The metrics JSON of a run that cannot be trained with this data (``skipped``: why); the report leaves its
    contrasts out and says so."""
    return {"size": int(size), "condition": condition, "aug": config.aug, "encoder": config.encoder,
            "seeds": list(config.seeds), "skipped": reason}


def run_condition(
    prepared_dir: str | Path,
    synthetic_root: str | Path,
    size: int,
    condition: str,
    config: SegConfig,
    gan_seeds: Sequence[int],
    files: SegRunPaths,
    deterministic: bool,
) -> dict[str, Any]:
    """Train and test U-Net++ for every seed in ``seg.seeds`` with augmentation ``config.aug``; write the metrics
    JSON and the per-image CSV (``files``: :func:`dfgan.core.paths.seg_run`).

    ``deterministic`` is ``runtime.deterministic`` (see :func:`dfgan.core.speed.configure_determinism`).

    Seed number k trains on the synthetic set of GAN seed ``gan_seeds[k mod len(gan_seeds)]`` (``gan_seeds`` is
    not read for ``real`` and ``real2x``). dvclive: one
    ``Live`` for all seeds; every curve is prefixed with its seed (``seed0/train_loss``, ``seed0/val_dice``, step =
    optimizer steps) and the summary holds ``seedK/test_dice``, ``dice_mean`` and ``dice_sem``.
    """
    start = time.perf_counter()
    prepared = load_prepared(prepared_dir)
    if condition == REAL_FRESH:
        try:
            prepared.fresh(size)
        except NotEnoughFresh as error:
            print(f"{size} {condition}: skipped: {error}")
            return write_run(files, skipped_metrics(size, condition, config, str(error)), pd.DataFrame(
                columns=["seed", "gan_seed", "row", "image_id", "dice", "empty_prediction", "pred_fraction",
                         "target_fraction"]), empty_log=True)
    device = resolve_device(config.device)
    configure_determinism(deterministic)
    graphs = seg_cuda_graphs(config, device)  # decided (and an ignored request printed) once for all seeds
    with open_live(files.live_dir) as live:
        runs = [
            run_seed(
                prepared, synthetic_root, size, condition, config, seed,
                gan_seed_for(k, gan_seeds) if uses_synthetic(condition) else 0, device, live, graphs,
            )
            for k, seed in enumerate(config.seeds)
        ]
        metrics = condition_metrics(runs, size, condition, config, time.perf_counter() - start)
        live.log_metric("dice_mean", metrics["dice_mean"], plot=False)
        live.log_metric("dice_sem", metrics["dice_sem"], plot=False)

    return write_run(files, metrics, per_image_table(runs, prepared))


def write_run(files: SegRunPaths, metrics: dict[str, Any], per_image: pd.DataFrame, empty_log: bool = False
              ) -> dict[str, Any]:
    """Write the run's metrics JSON and per-image CSV; ``empty_log``: also the (empty) curves folder DVC expects of a
    run that trained nothing."""
    metrics_path, per_image_path = files.metrics_path, files.per_image_path
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    per_image_path.parent.mkdir(parents=True, exist_ok=True)
    per_image.to_csv(per_image_path, index=False)
    if empty_log:
        live_plots(files.live_dir).mkdir(parents=True, exist_ok=True)
    return metrics
