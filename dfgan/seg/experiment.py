"""U-Net++ segmentation under the paper's training conditions (Tables 1-2), evaluated by Dice on held-out positives.

The conditions and the training set each assembles live in :mod:`dfgan.seg.training_sets`.

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

import itertools
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import segmentation_models_pytorch as smp
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler
from tqdm import tqdm

from dfgan.core.speed import (
    CapturedStep, adam, channels_last_input, compile_in_place, configure_determinism, cuda_graphs_wanted,
    prefer_channels_last,
)
from dfgan.seg.augment import (
    AUG_NONE, JointTransform, build_augmentation, identity_augmentation, seeded_batch_augmentation,
)
from dfgan.seg.encoder_weights import model_with_encoder_file
from dfgan.core.imaging import uint8_to_unit
from dfgan.core.paths import SegRunPaths
from dfgan.seg.dice import dice_per_image, mean_and_sem
from dfgan.core.validation import SCHEDULES
from dfgan.data.prepared_arrays import PreparedData, load_prepared
from dfgan.core.runtime import progress_disabled, resolve_device, seed_everything
from dfgan.core.training_log import TrainingLog, open_live
from dfgan.seg.training_sets import TrainingSet, assemble_training_set, gan_seed_for, uses_synthetic

BatchAugmentation = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# One optimizer step on a batch already on the device: (images, masks) -> the loss, a detached 0-d device tensor.
TrainStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# ---------------------------------------------------------------------------------------------------------------------
# Data, model, loss
# ---------------------------------------------------------------------------------------------------------------------


class SegmentationDataset(Dataset):
    """uint8 images and {0,1} masks -> (image (1,H,W) in [-1, 1], mask (1,H,W) float), augmented per sample."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, augmentation: JointTransform) -> None:
        if images.shape != masks.shape:
            raise ValueError(f"images {images.shape} and masks {masks.shape} differ")
        self.images = images
        self.masks = masks
        self.augmentation = augmentation

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Convert one image at a time: the whole set as float32 would not fit in memory at the paper's sizes.
        image = uint8_to_unit(self.images[index : index + 1])[0]
        mask = torch.from_numpy(np.ascontiguousarray(self.masks[index : index + 1]))
        image, mask = self.augmentation(image, mask)
        return image, mask.float()


class IndexDataset(Dataset):
    """range(n) as a dataset: a DataLoader over it draws exactly the batch order (and the seeds) it would draw over
    the images, while the images themselves stay on the device (:func:`training_rounds`)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index


def device_batches(
    index_batches: Iterator[torch.Tensor], images: torch.Tensor, masks: torch.Tensor, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Index batches (CPU, pinned on CUDA by the loader) -> (images (B,1,H,W) in [-1, 1], masks (B,1,H,W) float)
    gathered from the uint8 tensors on the device: the arithmetic of :class:`SegmentationDataset`, per batch."""
    for rows in index_batches:
        rows = rows.to(device, non_blocking=True)
        yield (images[rows].float() / 127.5 - 1.0).unsqueeze(1), masks[rows].float().unsqueeze(1)


def build_model(
    encoder: str,
    encoder_weights: str | None,
    in_channels: int = 1,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    encoder_weights_path: str | Path | None = None,
) -> nn.Module:
    """U-Net++ with one logit channel (no activation); ``encoder_weights: null`` never touches the network.

    ``decoder_channels`` defaults to smp's; the nested decoder dominates the cost at small image sizes.
    ``encoder_weights_path`` (``seg.encoder_weights_path``): the encoder's pretrained weights from this file instead of
    a download (``encoder_weights`` is then only their label), for machines without network; the layouts it accepts
    and the alternative (a pre-filled Hugging Face cache) are in :mod:`dfgan.seg.encoder_weights`.
    """

    def build(channels: int, weights: str | None = None) -> nn.Module:
        return smp.UnetPlusPlus(
            encoder_name=encoder,
            encoder_weights=weights,
            in_channels=channels,
            classes=1,
            decoder_channels=tuple(int(c) for c in decoder_channels),
        )

    if encoder_weights_path is None:
        return build(in_channels, encoder_weights)
    return model_with_encoder_file(build, in_channels, encoder_weights_path)


def build_training_model(seg_params: dict[str, Any], device: torch.device) -> nn.Module:
    """The U-Net++ of the ``seg`` section on ``device``, as training uses it: channels_last on CUDA, compiled when
    ``seg.compile`` asks."""
    model = build_model(
        seg_params["encoder"], seg_params["encoder_weights"], decoder_channels=seg_params["decoder_channels"]
    ).to(device)
    return compile_in_place(prefer_channels_last(model, device), seg_params["compile"])


class BceDiceLoss(nn.Module):
    """bce_weight * BCE-with-logits + dice_weight * soft Dice loss (on the sigmoid of the logits)."""

    def __init__(self, bce_weight: float, dice_weight: float) -> None:
        super().__init__()
        self.bce_weight = float(bce_weight)
        self.dice_weight = float(dice_weight)
        self.bce = nn.BCEWithLogitsLoss()
        self.dice = smp.losses.DiceLoss(mode="binary", from_logits=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce_weight * self.bce(logits, target) + self.dice_weight * self.dice(logits, target)


# ---------------------------------------------------------------------------------------------------------------------
# Prediction and evaluation
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """Per-image results on one image set."""

    dice: np.ndarray  # float64 (n,)
    empty: np.ndarray  # bool (n,): the model predicted no foreground pixel at all
    pred_fraction: np.ndarray  # float64 (n,): share of pixels predicted foreground

    @property
    def mean_dice(self) -> float:
        return float(self.dice.mean()) if len(self.dice) else float("nan")


@torch.no_grad()
def predict_masks(
    model: nn.Module, images: np.ndarray, threshold: float, device: torch.device, batch_size: int
) -> np.ndarray:
    """Binary predictions (N, H, W) bool: sigmoid(logits) > threshold, in eval mode, batch by batch."""
    model.eval()
    predictions = []
    for start in range(0, len(images), batch_size):
        batch = uint8_to_unit(images[start : start + batch_size]).to(device)
        probabilities = torch.sigmoid(model(batch))
        predictions.append((probabilities > threshold).squeeze(1).cpu().numpy())
    if not predictions:
        return np.zeros((0,) + tuple(images.shape[1:]), dtype=bool)
    return np.concatenate(predictions)


def evaluate(
    model: nn.Module,
    images: np.ndarray,
    masks: np.ndarray,
    threshold: float,
    device: torch.device,
    batch_size: int = 16,
) -> Evaluation:
    """Per-image Dice, empty-prediction flags and predicted foreground fractions of ``model`` on (images, masks)."""
    predictions = predict_masks(model, images, threshold, device, batch_size)
    return Evaluation(
        dice=dice_per_image(predictions, np.asarray(masks)),
        empty=~predictions.reshape(len(predictions), -1).any(axis=1),
        pred_fraction=predictions.reshape(len(predictions), -1).mean(axis=1).astype(np.float64),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """How long one U-Net++ trains and when it is validated: ``rounds`` rounds, validated after each.

    ``steps_per_round`` is fixed for ``steps`` (the same for every condition of a size) and None for ``epochs``
    (a round is one pass over the condition's training set).
    """

    kind: str
    rounds: int
    steps_per_round: int | None
    batch_size: int

    def describe(self) -> str:
        per = "1 epoch" if self.steps_per_round is None else f"{self.steps_per_round} steps"
        return f"{self.kind}: {self.rounds} rounds of {per}"


def make_schedule(seg_params: dict[str, Any], n_real_train: int) -> Schedule:
    """The schedule of every condition of one size; ``n_real_train`` is that size's number of real training images.

    ``steps``: a round is ``ceil(seg.budget_factor * n_real_train / batch_size)`` optimizer steps, whatever the
    condition adds (budget_factor 3 = one pass over R + 2S; R then gets as many steps as R + 2S).
    """
    kind, rounds, batch_size = str(seg_params["schedule"]), int(seg_params["epochs"]), int(seg_params["batch_size"])
    if kind not in SCHEDULES:
        raise ValueError(f"seg.schedule must be one of {SCHEDULES}, got '{kind}'")
    if kind == "epochs":
        return Schedule(kind, rounds, None, batch_size)
    steps = math.ceil(float(seg_params["budget_factor"]) * n_real_train / batch_size)
    return Schedule(kind, rounds, max(1, steps), batch_size)


class CyclingBatchSampler(Sampler[list[int]]):
    """``total_steps`` full batches drawn from consecutive fresh permutations of range(n) (seeded).

    A batch that reaches the end of one permutation continues into the next, so every batch has ``batch_size``
    images and, over the run, every image is drawn equally often (up to one permutation).
    """

    def __init__(self, n: int, batch_size: int, total_steps: int, generator: torch.Generator) -> None:
        if n < 1 or batch_size < 1:
            raise ValueError(f"need at least one image and a positive batch size, got n={n}, batch_size={batch_size}")
        self.n, self.batch_size, self.total_steps, self.generator = n, batch_size, total_steps, generator

    def __len__(self) -> int:
        return self.total_steps

    def __iter__(self) -> Iterator[list[int]]:
        pending: list[int] = []
        for _ in range(self.total_steps):
            while len(pending) < self.batch_size:
                pending.extend(torch.randperm(self.n, generator=self.generator).tolist())
            batch, pending = pending[: self.batch_size], pending[self.batch_size :]
            yield batch


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_round: int  # 1-based; an epoch under the "epochs" schedule
    best_step: int  # optimizer steps taken when the kept weights were saved
    best_val_dice: float
    steps: int = 0  # optimizer steps of the whole run
    rounds_run: int = 0  # fewer than the schedule's rounds when seg.patience stopped it early
    images_seen: int = 0
    train_loss: list[float] = field(default_factory=list)
    val_dice: list[float] = field(default_factory=list)


def seed_worker(worker_id: int) -> None:
    """DataLoader worker start: NumPy and ``random`` follow the worker's torch seed (base seed + worker id)."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def loader_options(seed: int, workers: int, device: torch.device) -> dict[str, Any]:
    """DataLoader keywords: ``workers`` processes, each seeded from a generator private to ``seed``, so the
    augmentation draws are fixed by the seed and the number of workers; pinned memory on CUDA.

    With no workers, augmentation runs in the main process and draws from the seeded global torch RNG, as always.
    """
    options: dict[str, Any] = {"pin_memory": device.type == "cuda"}
    if workers > 0:
        worker_seeds = torch.Generator().manual_seed(seed + 1)  # apart from the batch-order generator
        options.update(
            num_workers=workers, worker_init_fn=seed_worker, generator=worker_seeds, persistent_workers=True,
        )
    return options


def training_rounds(
    data: TrainingSet, augmentation: JointTransform, schedule: Schedule, seed: int, device: torch.device,
    workers: int = 0,
) -> Iterator[Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """One batch iterator per round; the order is fixed by ``seed`` through a private generator.

    ``epochs``: a shuffled pass per round (a last batch of one image is dropped: it breaks batch norm at the 1x1
    bottleneck of small inputs). ``steps``: one cycling stream cut into rounds of ``steps_per_round`` batches.
    ``workers`` (``seg.workers``): see :func:`loader_options`.

    Without per-sample work (``augmentation`` is the identity: ``aug: none``, or ``seg.augment_on: device``) the
    training images go to the device once, as uint8, and each batch is gathered and converted there
    (:func:`device_batches`); the DataLoader then only draws the order, over :class:`IndexDataset`, in the main
    process with the very generators and draws the configured loader would use, so the batches are the same.
    """
    on_device = augmentation is identity_augmentation
    if on_device:
        dataset: Dataset = IndexDataset(len(data.train_images))
        images = torch.from_numpy(np.ascontiguousarray(data.train_images)).to(device)
        masks = torch.from_numpy(np.ascontiguousarray(data.train_masks)).to(device)
    else:
        dataset = SegmentationDataset(data.train_images, data.train_masks, augmentation)
    generator = torch.Generator().manual_seed(seed)
    options = loader_options(seed, workers, device)
    if on_device:  # no worker processes; their seed generator stays, so every generator draws what it drew
        for key in ("num_workers", "worker_init_fn", "persistent_workers"):
            options.pop(key, None)
    on = (lambda batches: device_batches(batches, images, masks, device)) if on_device else (lambda batches: batches)
    if schedule.kind == "epochs":
        n = len(dataset)
        # Without workers the loader's own generator shuffles (and seeds nothing else): as it always did.
        order = {"sampler": RandomSampler(dataset, generator=generator)} if workers else {"shuffle": True, "generator": generator}
        loader = DataLoader(
            dataset, batch_size=schedule.batch_size, **order, **options, drop_last=n % schedule.batch_size == 1 and n > 1,
        )
        for _ in range(schedule.rounds):
            yield on(iter(loader))
        return
    assert schedule.steps_per_round is not None
    sampler = CyclingBatchSampler(len(dataset), schedule.batch_size, schedule.rounds * schedule.steps_per_round, generator)
    stream = on(iter(DataLoader(dataset, batch_sampler=sampler, **options)))
    for _ in range(schedule.rounds):
        yield itertools.islice(stream, schedule.steps_per_round)


def eager_step(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer) -> TrainStep:
    """The U-Net++ optimizer step: forward, BCE + Dice, backward, Adam; returns the detached loss (on the device).
    Gradients are set to None first, so that a CUDA graph of it (:class:`dfgan.core.speed.CapturedStep`) owns
    its gradient buffers."""

    def step(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def train_batches(
    model: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    batch_augmentation: BatchAugmentation | None = None,
    step: TrainStep | None = None,
) -> tuple[float, int, int]:
    """Optimizer steps over ``batches``; returns (sample-weighted mean loss, steps, images).

    ``batch_augmentation`` (``seg.augment_on: device``) augments each batch once it is on the device. ``step``:
    the optimizer step (default :func:`eager_step`; ``seg.cuda_graphs``: its CUDA graph). The loss is summed on
    the device in float64 (the arithmetic of summing Python floats) and read once, at the end: one host sync per
    round, none per step."""
    model.train()
    step = step if step is not None else eager_step(model, loss_fn, optimizer)
    total = torch.zeros((), dtype=torch.float64, device=device)
    count, steps = 0, 0
    for images, masks in batches:
        images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
        if batch_augmentation is not None:
            images, masks = batch_augmentation(images, masks)
        images = channels_last_input(images)
        loss = step(images, masks)
        total += loss.double() * len(images)
        count += len(images)
        steps += 1
    return float(total) / max(count, 1), steps, count


def seg_cuda_graphs(seg_params: dict[str, Any], device: torch.device) -> bool:
    """Whether U-Net++ steps replay as CUDA graphs (``seg.cuda_graphs``, CUDA only, not with torch.compile); an
    ignored request prints one line."""
    compile_mode = str(seg_params.get("compile", "off") or "off")
    return cuda_graphs_wanted(bool(seg_params.get("cuda_graphs", False)), device, "seg.cuda_graphs",
                              {f"seg.compile is {compile_mode}": compile_mode not in ("off", "False")})


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the weights (a plain ``state_dict()`` would keep changing with training)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(
    model: nn.Module,
    data: TrainingSet,
    augmentation: JointTransform,
    seg_params: dict[str, Any],
    schedule: Schedule,
    seed: int,
    device: torch.device,
    live: TrainingLog | None = None,
    prefix: str = "",
    batch_augmentation: BatchAugmentation | None = None,
    cuda_graphs: bool | None = None,
) -> FitResult:
    """Train by ``schedule``, keeping the weights of the round with the best validation Dice.

    Without validation images (``data.val_fraction: 0``) the last round is kept. With ``seg.patience`` P, training
    stops after P rounds without a better validation Dice (a best round equal to the schedule's last round then
    means the run was still improving when its budget ran out). Curves go to ``live`` as
    ``<prefix>train_loss`` and ``<prefix>val_dice`` with step = optimizer steps so far, so that conditions trained
    under the ``steps`` schedule line up.

    ``cuda_graphs`` (default: :func:`seg_cuda_graphs` of ``seg_params``): every full batch's step replays one CUDA
    graph (after 3 eager warm-up steps; a short batch runs eagerly). Validation reads predictions back to the host
    (a sync per round, as the round's loss).
    """
    graphs = seg_cuda_graphs(seg_params, device) if cuda_graphs is None else bool(cuda_graphs)
    loss_fn = BceDiceLoss(seg_params["bce_weight"], seg_params["dice_weight"])
    optimizer = adam(model.parameters(), device, graphs, lr=float(seg_params["lr"]))
    step = CapturedStep(eager_step(model, loss_fn, optimizer), name="seg.cuda_graphs") if graphs else None
    threshold = float(seg_params["threshold"])
    patience = None if seg_params.get("patience") is None else int(seg_params["patience"])
    result = FitResult(best_state=state_copy(model), best_round=0, best_step=0, best_val_dice=float("-inf"))
    desc = f"U-Net++ {prefix.rstrip('/')}".strip()
    rounds = tqdm(
        enumerate(training_rounds(data, augmentation, schedule, seed, device, int(seg_params["workers"])), start=1),
        total=schedule.rounds, desc=desc, unit="round", disable=progress_disabled(),
    )
    for round_number, batches in rounds:
        loss, steps, images = train_batches(model, batches, loss_fn, optimizer, device, batch_augmentation, step)
        result.steps += steps
        result.images_seen += images
        result.train_loss.append(loss)
        if data.n_val:
            val_dice = evaluate(model, data.val_images, data.val_masks, threshold, device, schedule.batch_size).mean_dice
        else:
            val_dice = float("nan")
        result.val_dice.append(val_dice)
        # ">=" on ties keeps the later round; with no validation split every round "wins", so the last one is kept.
        if not data.n_val or val_dice >= result.best_val_dice:
            result.best_state, result.best_val_dice = state_copy(model), val_dice
            result.best_round, result.best_step = round_number, result.steps
        result.rounds_run = round_number
        rounds.set_postfix(loss=f"{loss:.4f}", val_dice=f"{val_dice:.4f}")
        if live is not None:
            live.step = result.steps
            live.log_metric(f"{prefix}train_loss", loss)
            if data.n_val:
                live.log_metric(f"{prefix}val_dice", val_dice)
            live.make_summary()
        # Early stopping on the validation Dice, the same rule for every condition; without validation there is
        # nothing to stop on.
        if patience is not None and data.n_val and round_number - result.best_round >= patience:
            break
    model.load_state_dict(result.best_state)
    return result


# ---------------------------------------------------------------------------------------------------------------------
# One condition, all seeds
# ---------------------------------------------------------------------------------------------------------------------


def augmentation_params(seg_params: dict[str, Any], aug: str) -> dict[str, Any]:
    """``seg.augmentations.<aug>``, naming the key when it is absent."""
    augmentations = seg_params.get("augmentations") or {}
    if aug not in augmentations:
        raise KeyError(f"seg.augmentations has no '{aug}' entry (has {sorted(augmentations)})")
    return augmentations[aug] or {}


def build_seed_augmentation(
    seg_params: dict[str, Any], aug: str, image_size: int, seed: int, device: torch.device
) -> tuple[JointTransform, BatchAugmentation | None]:
    """(per-sample augmentation for the DataLoader, batch augmentation on the device or None) of one seed.

    ``seg.augment_on: loader``: torchvision per sample, in the main process or ``seg.workers`` processes.
    ``device``: the same operations drawn per sample but applied to whole batches on the device
    (:func:`dfgan.seg.augment.seeded_batch_augmentation`); faster on a GPU (benchmarks/RESULTS.md), a different
    random draw than ``loader``, so results of the two differ by augmentation noise."""
    params_aug = augmentation_params(seg_params, aug)
    if aug == AUG_NONE or seg_params["augment_on"] == "loader":
        return build_augmentation(aug, params_aug, image_size), None
    return identity_augmentation, seeded_batch_augmentation(params_aug, image_size, seed + 2, device)


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
    aug: str,
    seg_params: dict[str, Any],
    seed: int,
    gan_seed: int,
    device: torch.device,
    live: TrainingLog | None,
    cuda_graphs: bool | None = None,
) -> SeedRun:
    """Assemble, train and test one seed; the seed fixes the initial weights, batch order and augmentation draws."""
    seed_everything(seed)
    data = assemble_training_set(prepared, synthetic_root, size, condition, gan_seed, seed=seed)
    schedule = make_schedule(seg_params, len(prepared.train(size)))
    augmentation, batch_augmentation = build_seed_augmentation(seg_params, aug, int(data.train_images.shape[-1]), seed,
                                                               device)
    model = build_training_model(seg_params, device)
    fitted = fit(model, data, augmentation, seg_params, schedule, seed, device, live, prefix=f"seed{seed}/",
                 batch_augmentation=batch_augmentation, cuda_graphs=cuda_graphs)
    test = prepared.test()
    evaluation = evaluate(
        model, np.asarray(test.images), np.asarray(test.masks), float(seg_params["threshold"]), device,
        int(seg_params["batch_size"]),
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
    runs: list[SeedRun], size: int, condition: str, aug: str, seg_params: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """The metrics JSON of one condition: Dice mean ± s.e. over seeds (each seed's Dice = mean over test images),
    and the training budget each seed got (optimizer steps, images seen, the selected step)."""
    per_seed = [run.test.mean_dice for run in runs]
    dice_mean, dice_sem = mean_and_sem(per_seed)
    first = runs[0]  # the counts and the schedule depend only on the size and the condition, not on the seed
    return {
        "size": int(size),
        "condition": condition,
        "aug": aug,
        "encoder": seg_params["encoder"],
        "seeds": [run.seed for run in runs],
        "gan_seed_per_seed": [run.gan_seed for run in runs],
        "dice_mean": dice_mean,
        "dice_sem": dice_sem,
        "dice_per_seed": per_seed,
        "empty_fraction": float(np.mean([run.test.empty.mean() for run in runs])),
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
        "n_train": first.data.n_train,
        "n_val": first.data.n_val,
        "n_test": len(first.test.dice),
        "seconds": round(seconds, 2),
    }


def run_condition(
    prepared_dir: str | Path,
    synthetic_root: str | Path,
    size: int,
    condition: str,
    aug: str,
    seg_params: dict[str, Any],
    gan_seeds: Sequence[int],
    files: SegRunPaths,
    deterministic: bool,
) -> dict[str, Any]:
    """Train and test U-Net++ for every seed in ``seg.seeds``; write the metrics JSON and the per-image CSV
    (``files``: :func:`dfgan.core.paths.seg_run`).

    ``deterministic`` is ``runtime.deterministic`` (see :func:`dfgan.core.speed.configure_determinism`).

    Seed number k trains on the synthetic set of GAN seed ``gan_seeds[k mod len(gan_seeds)]`` (``gan_seeds`` is
    not read for ``real`` and ``real2x``). dvclive: one
    ``Live`` for all seeds; every curve is prefixed with its seed (``seed0/train_loss``, ``seed0/val_dice``, step =
    optimizer steps) and the summary holds ``seedK/test_dice``, ``dice_mean`` and ``dice_sem``.
    """
    start = time.perf_counter()
    seeds = [int(s) for s in seg_params["seeds"]]
    if not seeds:
        raise ValueError("seg.seeds is empty")
    augmentation_params(seg_params, aug)  # fail on an unknown setting before any work
    prepared = load_prepared(prepared_dir)
    device = resolve_device(seg_params["device"])
    configure_determinism(deterministic)
    graphs = seg_cuda_graphs(seg_params, device)  # decided (and an ignored request printed) once for all seeds
    with open_live(files.live_dir) as live:
        runs = [
            run_seed(
                prepared, synthetic_root, size, condition, aug, seg_params, seed,
                gan_seed_for(k, gan_seeds) if uses_synthetic(condition) else 0, device, live, graphs,
            )
            for k, seed in enumerate(seeds)
        ]
        metrics = condition_metrics(runs, size, condition, aug, seg_params, time.perf_counter() - start)
        live.log_metric("dice_mean", metrics["dice_mean"], plot=False)
        live.log_metric("dice_sem", metrics["dice_sem"], plot=False)

    metrics_path, per_image_path = files.metrics_path, files.per_image_path
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    per_image_path.parent.mkdir(parents=True, exist_ok=True)
    per_image_table(runs, prepared).to_csv(per_image_path, index=False)
    return metrics
