"""Training one U-Net++: the schedule (equal optimizer steps per condition, or fixed epochs), the seeded batch order
and augmentation workers, the optimizer step (eager or a CUDA graph), and the fit that keeps the round with the best
validation Dice (early stopping with ``seg.patience``).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler
from tqdm import tqdm

from dfgan.core.imaging import uint8_to_unit
from dfgan.core.runtime import progress_disabled
from dfgan.core.speed import CapturedStep, adam, channels_last_input, cuda_graphs_wanted
from dfgan.core.training_log import TrainingLog
from dfgan.seg.augment import JointTransform, identity_augmentation
from dfgan.seg.config import SegConfig
from dfgan.seg.model import BceDiceLoss, evaluate
from dfgan.seg.training_sets import TrainingSet

BatchAugmentation = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# One optimizer step on a batch already on the device: (images, masks) -> the loss, a detached 0-d device tensor.
TrainStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------------------------------
# Training data
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



# ---------------------------------------------------------------------------------------------------------------------
# Schedule and training
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


def make_schedule(config: SegConfig, n_real_train: int) -> Schedule:
    """The schedule of every condition of one size; ``n_real_train`` is that size's number of real training images.

    ``steps``: a round is ``ceil(seg.budget_factor * n_real_train / batch_size)`` optimizer steps, whatever the
    condition adds (budget_factor 3 = one pass over R + 2S; R then gets as many steps as R + 2S).
    """
    kind, rounds, batch_size = config.schedule, config.epochs, config.batch_size
    if kind == "epochs":
        return Schedule(kind, rounds, None, batch_size)
    steps = math.ceil(config.budget_factor * n_real_train / batch_size)
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


def seg_cuda_graphs(config: SegConfig, device: torch.device) -> bool:
    """Whether U-Net++ steps replay as CUDA graphs (``seg.cuda_graphs``, CUDA only, not with torch.compile); an
    ignored request prints one line."""
    return cuda_graphs_wanted(config.cuda_graphs, device, "seg.cuda_graphs",
                              {f"seg.compile is {config.compile}": config.compile != "off"})


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the weights (a plain ``state_dict()`` would keep changing with training)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def stops_early(round_number: int, best_round: int, patience: int | None, min_rounds: int) -> bool:
    """Early stopping after ``round_number``: ``patience`` rounds without a better validation Dice, and never before
    round ``min_rounds`` (see :func:`fit`); ``patience`` None: never."""
    return patience is not None and round_number >= min_rounds and round_number - best_round >= patience


def fit(
    model: nn.Module,
    data: TrainingSet,
    augmentation: JointTransform,
    config: SegConfig,
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
    stops after P rounds without a better validation Dice, but never before round ``seg.min_rounds`` (a best round
    equal to the schedule's last round then means the run was still improving when its budget ran out). Why the
    minimum: a U-Net++ first predicts no lesion at all for several rounds (validation Dice exactly 0) before it
    starts to segment; a seed whose first round scored a chance Dice above 0 would otherwise be stopped there and
    keep its first round (docs/statistics.md, "Training that does not die"). Curves go to ``live`` as
    ``<prefix>train_loss`` and ``<prefix>val_dice`` with step = optimizer steps so far, so that conditions trained
    under the ``steps`` schedule line up.

    ``cuda_graphs`` (default: :func:`seg_cuda_graphs` of ``config``): every full batch's step replays one CUDA
    graph (after 3 eager warm-up steps; a short batch runs eagerly). Validation reads predictions back to the host
    (a sync per round, as the round's loss).
    """
    graphs = seg_cuda_graphs(config, device) if cuda_graphs is None else cuda_graphs
    loss_fn = BceDiceLoss(config.bce_weight, config.dice_weight)
    optimizer = adam(model.parameters(), device, graphs, lr=config.lr)
    step = CapturedStep(eager_step(model, loss_fn, optimizer), name="seg.cuda_graphs") if graphs else None
    threshold, patience = config.threshold, config.patience
    result = FitResult(best_state=state_copy(model), best_round=0, best_step=0, best_val_dice=float("-inf"))
    desc = f"U-Net++ {prefix.rstrip('/')}".strip()
    rounds = tqdm(
        enumerate(training_rounds(data, augmentation, schedule, seed, device, config.workers), start=1),
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
        if data.n_val and stops_early(round_number, result.best_round, patience, config.min_rounds):
            break
    model.load_state_dict(result.best_state)
    return result

