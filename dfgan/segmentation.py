"""U-Net++ segmentation under the paper's training conditions (Tables 1-2), evaluated by Dice on held-out positives.

Conditions (``seg.synthetic_conditions`` plus the baseline ``real``); files are named ``real-<aug>`` and
``real+<condition>-<aug>`` (see :func:`run_label`):

- ``real``: the N real training images of one size (the paper's "N R").
- ``<variant>`` (``pix2pix``, ``dfgan``): N real + N synthetic images of that GAN variant ("N R + N S").
- ``<variant>2x`` (e.g. ``dfgan2x``): N real + N synthetic + N synthetic grown from flipped lesions ("N R + 2N S").

A validation split (for picking the best epoch) is carved from the REAL training images only, and every synthetic
image whose source lesion lies in it is dropped, so no validation lesion leaks into training. The test set is only
touched once per seed, by the best-epoch model.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import segmentation_models_pytorch as smp
import torch
from dvclive import Live
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from dfgan.augment import JointTransform, build_augmentation
from dfgan.imaging import uint8_to_unit
from dfgan.metrics import dice_per_image, mean_and_sem
from dfgan.params_schema import DOUBLED_SUFFIX, REAL
from dfgan.prepared import ImageSet, PreparedData, load_prepared
from dfgan.runtime import progress_disabled, resolve_device, seed_everything
from dfgan.synthetic_data import load_synthetic

FLIPPED_SUFFIX = DOUBLED_SUFFIX

# Where each training image comes from (TrainingSet.train_part).
PART_REAL, PART_SYNTHETIC, PART_FLIPPED = 0, 1, 2


# ---------------------------------------------------------------------------------------------------------------------
# Conditions and the training set
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A parsed condition name: which GAN variant supplies synthetic images, and how many copies (0, 1 or 2)."""

    name: str
    variant: str | None
    copies: int


def parse_condition(condition: str) -> Condition:
    """``real`` -> no synthetic; ``dfgan`` -> 1 copy of DF-GAN's; ``dfgan2x`` -> plain + flipped-lesion copies."""
    if condition == REAL:
        return Condition(condition, None, 0)
    if condition.endswith(FLIPPED_SUFFIX) and len(condition) > len(FLIPPED_SUFFIX):
        return Condition(condition, condition[: -len(FLIPPED_SUFFIX)], 2)
    if not condition:
        raise ValueError("empty condition name")
    return Condition(condition, condition, 1)


def condition_label(condition: str) -> str:
    """The training-set name used in paths and tables: ``real`` or ``real+<condition>`` (e.g. ``real+dfgan2x``)."""
    return REAL if condition == REAL else f"{REAL}+{condition}"


def run_label(condition: str, aug: str) -> str:
    """The file stem of one run, as dvc.yaml names it: ``real-none``, ``real+dfgan2x-classic``."""
    return f"{condition_label(condition)}-{aug}"


@dataclass(frozen=True)
class TrainingSet:
    """What one seed trains and validates on; ``train_source_rows`` is the prepared row of each training lesion."""

    train_images: np.ndarray  # uint8 (n_train, S, S): real first, then synthetic
    train_masks: np.ndarray
    train_source_rows: np.ndarray  # int64 (n_train,)
    train_part: np.ndarray  # int8 (n_train,): PART_REAL, PART_SYNTHETIC or PART_FLIPPED
    val_images: np.ndarray
    val_masks: np.ndarray
    val_rows: np.ndarray

    @property
    def n_train_real(self) -> int:
        return int((self.train_part == PART_REAL).sum())

    @property
    def n_train_synthetic(self) -> int:
        return int((self.train_part != PART_REAL).sum())

    @property
    def n_val(self) -> int:
        return len(self.val_rows)


def validation_count(n_real: int, val_fraction: float) -> int:
    """round(val_fraction * n), at least 1 when the fraction is positive, and always leaving one image to train on."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0.0:
        return 0
    if n_real < 2:
        raise ValueError(f"cannot carve a validation split from {n_real} real training image(s)")
    return int(min(max(1, round(val_fraction * n_real)), n_real - 1))


def split_validation(rows: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split real training rows into (train, val), deterministically from ``seed``; both keep the input order."""
    rows = np.asarray(rows, dtype=np.int64)
    n_val = validation_count(len(rows), val_fraction)
    chosen = np.zeros(len(rows), dtype=bool)
    chosen[np.random.default_rng(seed).permutation(len(rows))[:n_val]] = True
    return rows[~chosen], rows[chosen]


def assemble_training_set(
    prepared: PreparedData,
    synthetic_dir: str | Path,
    size: int,
    condition: str,
    val_fraction: float,
    seed: int,
) -> TrainingSet:
    """Real images of ``size`` (minus a validation split), plus the condition's synthetic images.

    ``synthetic_dir`` is the synthetic root (``data/synthetic``) holding ``<size>/<variant>/synthetic.npz``; it is
    not read for ``real``. Synthetic images whose source lesion is a validation row are excluded; a synthetic file
    whose source rows are not this size's training rows is an error (it would leak test or foreign lesions).
    """
    parsed = parse_condition(condition)
    real = prepared.train(size)
    train_rows, val_rows = split_validation(real.rows, val_fraction, seed)
    real_train = prepared.subset(train_rows)
    val = prepared.subset(val_rows)

    images, masks, sources = [real_train.images], [real_train.masks], [real_train.rows]
    parts = [np.full(len(real_train), PART_REAL, np.int8)]
    if parsed.variant is not None:
        synthetic = load_synthetic(synthetic_dir, size, parsed.variant)
        for part_id, part in zip((PART_SYNTHETIC, PART_FLIPPED), synthetic.parts(parsed.copies)):
            _check_synthetic_sources(part.source_rows, real, condition, size)
            if part.images.shape[1:] != real.images.shape[1:]:
                raise ValueError(
                    f"{condition} synthetic images are {part.images.shape[1:]}, real ones {real.images.shape[1:]}"
                )
            kept = part.keep_sources(train_rows)
            images.append(kept.images)
            masks.append(kept.masks)
            sources.append(kept.source_rows)
            parts.append(np.full(len(kept), part_id, np.int8))

    return TrainingSet(
        train_images=np.concatenate(images).astype(np.uint8, copy=False),
        train_masks=np.concatenate(masks).astype(np.uint8, copy=False),
        train_source_rows=np.concatenate(sources).astype(np.int64, copy=False),
        train_part=np.concatenate(parts),
        val_images=np.asarray(val.images),
        val_masks=np.asarray(val.masks),
        val_rows=val.rows,
    )


def _check_synthetic_sources(source_rows: np.ndarray, real: ImageSet, condition: str, size: int) -> None:
    foreign = np.setdiff1d(source_rows, real.rows)
    if foreign.size:
        raise ValueError(
            f"{condition} synthetic set for size {size} has lesions from rows outside that size's training rows "
            f"(e.g. {foreign[:5].tolist()}): it was made from another split; rerun the synthesis stage"
        )


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


def build_model(
    encoder: str,
    encoder_weights: str | None,
    in_channels: int = 1,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
) -> nn.Module:
    """U-Net++ with one logit channel (no activation); ``encoder_weights: null`` never touches the network.

    ``decoder_channels`` defaults to smp's; the nested decoder dominates the cost at small image sizes.
    """
    return smp.UnetPlusPlus(
        encoder_name=encoder,
        encoder_weights=encoder_weights,
        in_channels=in_channels,
        classes=1,
        decoder_channels=tuple(int(c) for c in decoder_channels),
    )


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


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int  # 1-based
    best_val_dice: float
    train_loss: list[float] = field(default_factory=list)
    val_dice: list[float] = field(default_factory=list)


def train_loader(
    data: TrainingSet, augmentation: JointTransform, batch_size: int, seed: int, device: torch.device
) -> DataLoader:
    """Shuffled loader over the training images, its order fixed by ``seed`` through a private generator.

    Augmentation runs in the main process (no workers), so its random draws come from the seeded global torch RNG.
    """
    dataset = SegmentationDataset(data.train_images, data.train_masks, augmentation)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        # A last batch of one image breaks batch norm at the 1x1 bottleneck of small inputs: drop only that case.
        drop_last=len(dataset) % batch_size == 1 and len(dataset) > 1,
        pin_memory=device.type == "cuda",
    )


def train_one_epoch(
    model: nn.Module, loader: DataLoader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> float:
    """One pass over ``loader``; returns the sample-weighted mean training loss."""
    model.train()
    total, count = 0.0, 0
    for images, masks in loader:
        images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(images)
        count += len(images)
    return total / max(count, 1)


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the weights (a plain ``state_dict()`` would keep changing with training)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(
    model: nn.Module,
    data: TrainingSet,
    augmentation: JointTransform,
    seg_params: dict[str, Any],
    seed: int,
    device: torch.device,
    live: Live | None = None,
    prefix: str = "",
) -> FitResult:
    """Train for ``seg.epochs`` epochs, keeping the weights of the epoch with the best validation Dice.

    Without a validation split (``val_fraction: 0``) the last epoch is kept. Curves go to ``live`` as
    ``<prefix>train_loss`` and ``<prefix>val_dice`` with step = epoch (1-based).
    """
    loader = train_loader(data, augmentation, int(seg_params["batch_size"]), seed, device)
    loss_fn = BceDiceLoss(seg_params["bce_weight"], seg_params["dice_weight"])
    optimizer = torch.optim.Adam(model.parameters(), lr=float(seg_params["lr"]))
    threshold = float(seg_params["threshold"])
    result = FitResult(best_state=state_copy(model), best_epoch=0, best_val_dice=float("-inf"))
    desc = f"U-Net++ {prefix.rstrip('/')}".strip()
    epochs = tqdm(range(1, int(seg_params["epochs"]) + 1), desc=desc, disable=progress_disabled())
    for epoch in epochs:
        loss = train_one_epoch(model, loader, loss_fn, optimizer, device)
        result.train_loss.append(loss)
        if data.n_val:
            val_dice = evaluate(
                model, data.val_images, data.val_masks, threshold, device, int(seg_params["batch_size"])
            ).mean_dice
        else:
            val_dice = float("nan")
        result.val_dice.append(val_dice)
        # ">=" on ties keeps the later epoch; with no validation split every epoch "wins", so the last one is kept.
        if not data.n_val or val_dice >= result.best_val_dice:
            result.best_state, result.best_epoch, result.best_val_dice = state_copy(model), epoch, val_dice
        epochs.set_postfix(loss=f"{loss:.4f}", val_dice=f"{val_dice:.4f}")
        if live is not None:
            live.step = epoch
            live.log_metric(f"{prefix}train_loss", loss)
            if data.n_val:
                live.log_metric(f"{prefix}val_dice", val_dice)
            live.make_summary()
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


@dataclass(frozen=True)
class SeedRun:
    seed: int
    data: TrainingSet
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
    device: torch.device,
    live: Live | None,
) -> SeedRun:
    """Assemble, train and test one seed; the seed fixes the validation split, initial weights and batch order."""
    seed_everything(seed)
    data = assemble_training_set(prepared, synthetic_root, size, condition, float(seg_params["val_fraction"]), seed)
    augmentation = build_augmentation(aug, augmentation_params(seg_params, aug), int(data.train_images.shape[-1]))
    model = build_model(
        seg_params["encoder"], seg_params["encoder_weights"], decoder_channels=seg_params["decoder_channels"]
    ).to(device)
    fitted = fit(model, data, augmentation, seg_params, seed, device, live, prefix=f"seed{seed}/")
    test = prepared.test()
    evaluation = evaluate(
        model, np.asarray(test.images), np.asarray(test.masks), float(seg_params["threshold"]), device,
        int(seg_params["batch_size"]),
    )
    if live is not None:
        live.log_metric(f"seed{seed}/test_dice", evaluation.mean_dice, plot=False)
        live.log_metric(f"seed{seed}/best_epoch", fitted.best_epoch, plot=False)
    return SeedRun(seed, data, fitted, evaluation)


def per_image_table(runs: list[SeedRun], prepared: PreparedData) -> pd.DataFrame:
    """One row per (seed, test image): seed, row, image_id (when the index has it), dice, empty_prediction, ..."""
    test = prepared.test()
    image_ids = _image_ids(prepared, test.rows)
    frames = []
    for run in runs:
        frame = pd.DataFrame(
            {
                "seed": run.seed,
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
    """The metrics JSON of one condition: Dice mean ± s.e. over seeds (each seed's Dice = mean over test images)."""
    per_seed = [run.test.mean_dice for run in runs]
    dice_mean, dice_sem = mean_and_sem(per_seed)
    first = runs[0].data  # the counts depend only on (size, val_fraction), the same for every seed
    return {
        "size": int(size),
        "condition": condition,
        "aug": aug,
        "encoder": seg_params["encoder"],
        "seeds": [run.seed for run in runs],
        "dice_mean": dice_mean,
        "dice_sem": dice_sem,
        "dice_per_seed": per_seed,
        "empty_fraction": float(np.mean([run.test.empty.mean() for run in runs])),
        "best_epoch_per_seed": [run.fit.best_epoch for run in runs],
        "val_dice_per_seed": [run.fit.best_val_dice if first.n_val else None for run in runs],
        "n_train_real": first.n_train_real,
        "n_train_synthetic": first.n_train_synthetic,
        "n_val": first.n_val,
        "n_test": len(runs[0].test.dice),
        "epochs": int(seg_params["epochs"]),
        "seconds": round(seconds, 2),
    }


def run_condition(
    prepared_dir: str | Path,
    synthetic_root: str | Path,
    size: int,
    condition: str,
    aug: str,
    seg_params: dict[str, Any],
    metrics_path: str | Path,
    per_image_path: str | Path,
    live_dir: str | Path,
) -> dict[str, Any]:
    """Train and test U-Net++ for every seed in ``seg.seeds``; write the metrics JSON and the per-image CSV.

    dvclive: one ``Live`` for all seeds; every curve is prefixed with its seed (``seed0/train_loss``,
    ``seed0/val_dice``, step = epoch) and the summary holds ``seedK/test_dice``, ``dice_mean`` and ``dice_sem``.
    """
    start = time.perf_counter()
    seeds = [int(s) for s in seg_params["seeds"]]
    if not seeds:
        raise ValueError("seg.seeds is empty")
    augmentation_params(seg_params, aug)  # fail on an unknown setting before any work
    prepared = load_prepared(prepared_dir)
    device = resolve_device(seg_params["device"])
    with Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) as live:
        runs = [
            run_seed(prepared, synthetic_root, size, condition, aug, seg_params, seed, device, live) for seed in seeds
        ]
        metrics = condition_metrics(runs, size, condition, aug, seg_params, time.perf_counter() - start)
        live.log_metric("dice_mean", metrics["dice_mean"], plot=False)
        live.log_metric("dice_sem", metrics["dice_sem"], plot=False)

    metrics_path, per_image_path = Path(metrics_path), Path(per_image_path)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    per_image_path.parent.mkdir(parents=True, exist_ok=True)
    per_image_table(runs, prepared).to_csv(per_image_path, index=False)
    return metrics
