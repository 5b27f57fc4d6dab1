"""Training conditions (counts, mask pairing, no leakage), evaluation, and a tiny end-to-end run_condition."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from dfgan.prepared import load_prepared, save_prepared
from dfgan.segmentation import (
    PART_FLIPPED,
    PART_REAL,
    PART_SYNTHETIC,
    BceDiceLoss,
    assemble_training_set,
    build_model,
    evaluate,
    parse_condition,
    run_condition,
    run_label,
    split_validation,
    validation_count,
)
from dfgan.synthetic_data import SYNTHETIC_KEYS, synthetic_path

S = 32  # smp's depth-5 encoders need sizes divisible by 32
N_TRAIN = 8
N_TEST = 4


def blob_images(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dark noisy images with one bright rectangle each; the mask is the rectangle (a learnable toy lesion)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, size, size)).astype(np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        h, w = rng.integers(size // 6, size // 3, 2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        masks[i, y : y + h, x : x + w] = 1
        images[i][masks[i] == 1] = rng.integers(180, 256)
    return images, masks


def make_prepared(directory: Path, size: int = S) -> Path:
    """Rows 0..7 train (nested subsets of 4 and 8), rows 8..11 test."""
    images, masks = blob_images(N_TRAIN + N_TEST, size, seed=0)
    index = pd.DataFrame({"row": range(len(images)), "image_id": [f"img{i}" for i in range(len(images))]})
    train = np.arange(N_TRAIN)
    save_prepared(directory, images, masks, index, np.arange(N_TRAIN, N_TRAIN + N_TEST), {4: train[:4], 8: train}, 0)
    return directory


def write_synthetic(
    root: Path, prepared_dir: Path, size: int, variant: str, source_rows: np.ndarray | None = None
) -> Path:
    """A synthetic.npz as the synthesis stage writes it: each image grown around its source row's (flipped) lesion."""
    data = load_prepared(prepared_dir)
    rows = data.train(size).rows if source_rows is None else np.asarray(source_rows, np.int64)
    rows = rows[::-1].copy()  # a different order from the real set, so pairing must follow source_rows
    masks = np.asarray(data.masks[rows])
    rng = np.random.default_rng(len(variant))
    images = np.where(masks == 1, 220, rng.integers(0, 80, masks.shape)).astype(np.uint8)
    flipped_masks = masks[:, :, ::-1].copy()
    flipped_images = np.where(flipped_masks == 1, 220, rng.integers(0, 80, masks.shape)).astype(np.uint8)
    path = synthetic_path(root, size, variant)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(
        images=images, masks=masks, source_rows=rows,
        flipped_images=flipped_images, flipped_masks=flipped_masks, flipped_source_rows=rows.copy(),
    )
    assert set(arrays) == set(SYNTHETIC_KEYS)
    np.savez(path, **arrays)
    return path


@pytest.fixture()
def project(tmp_path: Path) -> dict[str, Path]:
    prepared = make_prepared(tmp_path / "prepared")
    synthetic = tmp_path / "synthetic"
    for variant in ("pix2pix", "dfgan"):
        write_synthetic(synthetic, prepared, N_TRAIN, variant)
    return {"prepared": prepared, "synthetic": synthetic, "root": tmp_path}


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Tiny models train faster on one thread; two threads on a shared 2-core box oversubscribe it (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------------------------------


def test_condition_names_and_labels() -> None:
    assert parse_condition("real").copies == 0
    assert (parse_condition("dfgan").variant, parse_condition("dfgan").copies) == ("dfgan", 1)
    assert (parse_condition("dfgan2x").variant, parse_condition("dfgan2x").copies) == ("dfgan", 2)
    assert run_label("real", "none") == "real-none"
    assert run_label("dfgan2x", "classic") == "real+dfgan2x-classic"


def test_validation_split_is_deterministic_and_leaves_training_images() -> None:
    rows = np.arange(10, 20)
    train_a, val_a = split_validation(rows, 0.2, seed=3)
    train_b, val_b = split_validation(rows, 0.2, seed=3)
    np.testing.assert_array_equal(val_a, val_b)
    np.testing.assert_array_equal(train_a, train_b)
    assert len(val_a) == 2 and set(train_a) | set(val_a) == set(rows) and not set(train_a) & set(val_a)
    assert validation_count(4, 0.01) == 1  # a positive fraction always validates on something
    assert validation_count(4, 0.0) == 0
    assert validation_count(2, 0.9) == 1  # and always leaves one image to train on
    with pytest.raises(ValueError):
        validation_count(1, 0.2)


@pytest.mark.parametrize(("condition", "copies"), [("real", 0), ("pix2pix", 1), ("dfgan", 1), ("dfgan2x", 2)])
def test_conditions_assemble_counts_pairs_and_no_leakage(project: dict[str, Path], condition: str, copies: int) -> None:
    prepared = load_prepared(project["prepared"])
    data = assemble_training_set(prepared, project["synthetic"], N_TRAIN, condition, val_fraction=0.25, seed=1)

    n_val = 2
    assert data.n_val == n_val and data.n_train_real == N_TRAIN - n_val
    assert data.n_train_synthetic == copies * (N_TRAIN - n_val)
    assert len(data.train_images) == len(data.train_masks) == (1 + copies) * (N_TRAIN - n_val)
    # Validation only from the real training rows; nothing trained on comes from a validation or test lesion.
    training_rows = set(prepared.train(N_TRAIN).rows.tolist())
    assert set(data.val_rows.tolist()) <= training_rows
    assert not set(data.train_source_rows.tolist()) & set(data.val_rows.tolist())
    assert not set(data.train_source_rows.tolist()) & set(prepared.test().rows.tolist())
    np.testing.assert_array_equal(data.val_masks, prepared.masks[data.val_rows])
    # Every mask is its source row's lesion: as is for real and synthetic images, mirrored for the flipped set.
    source_masks = np.asarray(prepared.masks[data.train_source_rows])
    flipped = data.train_part == PART_FLIPPED
    np.testing.assert_array_equal(data.train_masks[~flipped], source_masks[~flipped])
    np.testing.assert_array_equal(data.train_masks[flipped], source_masks[flipped][:, :, ::-1])
    assert flipped.sum() == (N_TRAIN - n_val if copies == 2 else 0)
    assert (data.train_part == PART_SYNTHETIC).sum() == (N_TRAIN - n_val if copies else 0)
    real_part = data.train_part == PART_REAL
    np.testing.assert_array_equal(data.train_images[real_part], prepared.images[data.train_source_rows[real_part]])


def test_synthetic_errors_name_the_problem(project: dict[str, Path]) -> None:
    prepared = load_prepared(project["prepared"])
    with pytest.raises(FileNotFoundError, match="cyclegan"):
        assemble_training_set(prepared, project["synthetic"], N_TRAIN, "cyclegan", 0.25, 0)
    # A synthetic set grown from a test lesion must never reach training.
    write_synthetic(project["synthetic"], project["prepared"], N_TRAIN, "leaky", np.array([0, 1, 2, N_TRAIN]))
    with pytest.raises(ValueError, match="outside"):
        assemble_training_set(prepared, project["synthetic"], N_TRAIN, "leaky", 0.25, 0)


class ConstantLogits(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.value)


def test_evaluate_reports_dice_empty_flags_and_fractions() -> None:
    masks = np.zeros((2, 4, 4), np.uint8)
    masks[0, :2, :2] = 1  # 4 of 16 pixels
    masks[1, :, :2] = 1  # 8 of 16 pixels
    images = np.zeros_like(masks)
    everything = evaluate(ConstantLogits(10.0), images, masks, 0.5, torch.device("cpu"), batch_size=1)
    np.testing.assert_allclose(everything.dice, [2 * 4 / (16 + 4), 2 * 8 / (16 + 8)])
    assert not everything.empty.any() and np.all(everything.pred_fraction == 1.0)
    nothing = evaluate(ConstantLogits(-10.0), images, masks, 0.5, torch.device("cpu"), batch_size=2)
    np.testing.assert_array_equal(nothing.dice, [0.0, 0.0])
    assert nothing.empty.all() and np.all(nothing.pred_fraction == 0.0)


def test_loss_weights_and_model_output_shape() -> None:
    logits, target = torch.randn(2, 1, 32, 32), (torch.rand(2, 1, 32, 32) > 0.5).float()
    bce_only = BceDiceLoss(bce_weight=1.0, dice_weight=0.0)(logits, target)
    torch.testing.assert_close(bce_only, nn.functional.binary_cross_entropy_with_logits(logits, target))
    assert BceDiceLoss(1.0, 1.0)(logits, target) > bce_only
    model = build_model("resnet18", None).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def tiny_seg_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "encoder": "resnet18", "encoder_weights": None, "decoder_channels": [32, 16, 8, 8, 4],
        "seeds": [0, 1], "epochs": 1, "batch_size": 4,
        "lr": 0.001, "bce_weight": 1.0, "dice_weight": 1.0, "val_fraction": 0.25, "threshold": 0.5,
        "device": "auto",
        "augmentations": {
            "none": {},
            "classic": {
                "hflip_p": 0.5, "rotate_degrees": 10, "crop_scale_min": 0.8, "crop_ratio_max": 1.1,
                "elastic_p": 0.3, "elastic_alpha": 20.0, "elastic_sigma": 4.0,
            },
        },
    }
    params.update(overrides)
    return params


@pytest.mark.slow  # seconds alone; tens of seconds on a shared 2-core box
def test_run_condition_end_to_end_writes_metrics_csv_and_curves(
    project: dict[str, Path], one_thread: None
) -> None:
    out = project["root"]
    metrics_path = out / "metrics" / "real+dfgan2x-classic.json"
    per_image_path = out / "seg" / "real+dfgan2x-classic" / "per_image.csv"
    live_dir = out / "dvclive"
    start = time.perf_counter()
    result = run_condition(
        project["prepared"], project["synthetic"], N_TRAIN, "dfgan2x", "classic", tiny_seg_params(),
        metrics_path, per_image_path, live_dir,
    )
    print(f"tiny run_condition (2 seeds x 1 epoch, 32x32): {time.perf_counter() - start:.1f} s")

    written = json.loads(metrics_path.read_text())
    assert written == result
    assert 0.0 <= written["dice_mean"] <= 1.0 and written["dice_sem"] >= 0.0
    assert len(written["dice_per_seed"]) == 2 and written["epochs"] == 1
    assert (written["n_train_real"], written["n_train_synthetic"], written["n_val"], written["n_test"]) == (6, 12, 2, 4)
    assert 0.0 <= written["empty_fraction"] <= 1.0 and written["seconds"] > 0
    np.testing.assert_allclose(written["dice_mean"], np.mean(written["dice_per_seed"]))

    table = pd.read_csv(per_image_path)
    assert len(table) == 2 * N_TEST
    assert {"seed", "row", "image_id", "dice", "empty_prediction", "pred_fraction"} <= set(table.columns)
    assert table["image_id"].tolist()[:N_TEST] == [f"img{r}" for r in range(N_TRAIN, N_TRAIN + N_TEST)]
    np.testing.assert_allclose(table.groupby("seed")["dice"].mean().tolist(), written["dice_per_seed"])

    curves = live_dir / "plots" / "metrics"
    for seed in (0, 1):
        assert (curves / f"seed{seed}" / "train_loss.tsv").is_file()
        assert (curves / f"seed{seed}" / "val_dice.tsv").is_file()


def test_run_condition_rejects_an_unknown_augmentation(project: dict[str, Path]) -> None:
    out = project["root"]
    with pytest.raises(KeyError, match="heavy"):
        run_condition(
            project["prepared"], project["synthetic"], N_TRAIN, "real", "heavy", tiny_seg_params(),
            out / "m.json", out / "p.csv", out / "live",
        )


@pytest.mark.slow  # seconds alone; tens of seconds on a shared 2-core box
def test_run_condition_repeats_exactly_for_a_seed(
    project: dict[str, Path], one_thread: None
) -> None:
    out = project["root"]
    params = tiny_seg_params(seeds=[3])
    runs = [
        run_condition(
            project["prepared"], project["synthetic"], N_TRAIN, "pix2pix", "classic", params,
            out / f"m{i}.json", out / f"p{i}.csv", out / f"live{i}",
        )
        for i in range(2)
    ]
    assert runs[0]["dice_per_seed"] == runs[1]["dice_per_seed"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "p0.csv"), pd.read_csv(out / "p1.csv"))
    assert runs[0]["dice_sem"] == 0.0  # one seed: no spread
