"""Training conditions (counts, mask pairing, no leakage), evaluation, and a tiny end-to-end run_condition."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from dfgan.core.params_file import load_settings
from dfgan.core.paths import SegRunPaths, run_label
from dfgan.core.settings import ClassicAugmentation, NoAugmentation, with_values
from dfgan.core.splits import validation_count
from dfgan.data.prepared_arrays import load_prepared, save_prepared, split_pools
from dfgan.gan.synthetic_sets import SYNTHETIC_KEYS, synthetic_path
from dfgan.seg.augment import build_augmentation, identity_augmentation
from dfgan.seg.config import SegConfig
from dfgan.seg.experiment import build_seed_augmentation, run_condition
from dfgan.seg.fit import CyclingBatchSampler, make_schedule, train_batches, training_rounds
from dfgan.seg.model import BceDiceLoss, build_model, evaluate
from dfgan.seg.training_sets import (
    PART_FLIPPED, PART_REAL, PART_REAL_REPEAT, PART_SYNTHETIC, assemble_training_set, gan_seed_for, parse_condition,
    trained_conditions,
)

REPO = Path(__file__).resolve().parents[1]
S = 32  # smp's depth-5 encoders need sizes divisible by 32
N_TRAIN = 8  # the pool of the largest size; val_fraction 0.25 holds 2 of them out for validation
N_VAL = 2
N_FIT = N_TRAIN - N_VAL
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
    """Rows 0..7 the pools (nested subsets of 4 and 8, each less its validation rows), rows 8..11 test."""
    images, masks = blob_images(N_TRAIN + N_TEST, size, seed=0)
    index = pd.DataFrame({"row": range(len(images)), "image_id": [f"img{i}" for i in range(len(images))]})
    pool = np.arange(N_TRAIN)
    train, val = split_pools({4: pool[:4], 8: pool}, 0.25, seed=0)
    save_prepared(directory, images, masks, index, np.arange(N_TRAIN, N_TRAIN + N_TEST), train, 0, val, 0.25)
    return directory


def write_synthetic(
    root: Path, prepared_dir: Path, size: int, variant: str, source_rows: np.ndarray | None = None, seed: int = 0
) -> Path:
    """A synthetic.npz as the synthesis stage writes it: each image grown around its source row's (flipped) lesion."""
    data = load_prepared(prepared_dir)
    rows = data.train(size).rows if source_rows is None else np.asarray(source_rows, np.int64)
    rows = rows[::-1].copy()  # a different order from the real set, so pairing must follow source_rows
    masks = np.asarray(data.masks[rows])
    rng = np.random.default_rng(len(variant) + 100 * seed)
    images = np.where(masks == 1, 220, rng.integers(0, 80, masks.shape)).astype(np.uint8)
    flipped_masks = masks[:, :, ::-1].copy()
    flipped_images = np.where(flipped_masks == 1, 220, rng.integers(0, 80, masks.shape)).astype(np.uint8)
    path = synthetic_path(root, size, variant, seed)
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
        for seed in (0, 1):
            write_synthetic(synthetic, prepared, N_TRAIN, variant, seed=seed)
    return {"prepared": prepared, "synthetic": synthetic, "root": tmp_path}


# --------------------------------------------------------------------------------------------------------------------


def test_condition_names_and_labels() -> None:
    assert parse_condition("real").copies == 0
    assert (parse_condition("real2x").variant, parse_condition("real2x").real_copies) == (None, 2)
    assert (parse_condition("dfgan").variant, parse_condition("dfgan").copies) == ("dfgan", 1)
    assert (parse_condition("dfgan2x").variant, parse_condition("dfgan2x").copies) == ("dfgan", 2)
    assert run_label("real", "none") == "real-none"
    assert run_label("real2x", "none") == "real2x-none"
    assert run_label("dfgan2x", "classic") == "real+dfgan2x-classic"
    settings = with_values(load_settings(REPO / "params.yaml"), {
        "variants": ["pix2pix", "dfgan"], "seg.real_conditions": ["real", "real2x"], "seg.flipped_variants": ["dfgan"],
    })
    assert trained_conditions(settings) == ["real", "real2x", "pix2pix", "dfgan", "dfgan2x"]


def test_validation_split_is_fixed_per_size_and_leaves_training_images() -> None:
    pools = {4: np.arange(10, 14), 10: np.arange(10, 20)}
    train_a, val_a = split_pools(pools, 0.2, seed=3)
    train_b, val_b = split_pools(pools, 0.2, seed=3)
    for size in pools:
        np.testing.assert_array_equal(val_a[size], val_b[size])
        np.testing.assert_array_equal(train_a[size], train_b[size])
        assert set(train_a[size]) | set(val_a[size]) == set(pools[size]) and not set(train_a[size]) & set(val_a[size])
    assert len(val_a[10]) == 2 and len(val_a[4]) == 1
    assert validation_count(4, 0.01) == 1  # a positive fraction always validates on something
    assert validation_count(4, 0.0) == 0
    assert validation_count(2, 0.9) == 1  # and always leaves one image to train on
    with pytest.raises(ValueError):
        validation_count(1, 0.2)
    train0, val0 = split_pools(pools, 0.0, seed=3)
    assert len(val0[10]) == 0 and train0[10].tolist() == pools[10].tolist()


def test_gan_seed_of_each_segmentation_seed_cycles() -> None:
    assert [gan_seed_for(k, [7, 8, 9]) for k in range(5)] == [7, 8, 9, 7, 8]
    assert [gan_seed_for(k, [0]) for k in range(3)] == [0, 0, 0]
    with pytest.raises(ValueError):
        gan_seed_for(0, [])


@pytest.mark.parametrize(
    ("condition", "copies", "real_copies"),
    [("real", 0, 1), ("real2x", 0, 2), ("pix2pix", 1, 1), ("dfgan", 1, 1), ("dfgan2x", 2, 1)],
)
def test_conditions_assemble_counts_pairs_and_no_leakage(
    project: dict[str, Path], condition: str, copies: int, real_copies: int
) -> None:
    prepared = load_prepared(project["prepared"])
    data = assemble_training_set(prepared, project["synthetic"], N_TRAIN, condition)

    assert data.n_val == N_VAL and data.n_train_real == N_FIT
    assert data.n_train_synthetic == copies * N_FIT
    assert len(data.train_images) == len(data.train_masks) == data.n_train == (real_copies + copies) * N_FIT
    assert (data.train_part == PART_REAL_REPEAT).sum() == (real_copies - 1) * N_FIT
    # Validation = the size's fixed validation rows; nothing trained on comes from a validation or test lesion.
    np.testing.assert_array_equal(data.val_rows, prepared.val(N_TRAIN).rows)
    assert not set(data.train_source_rows.tolist()) & set(data.val_rows.tolist())
    assert not set(data.train_source_rows.tolist()) & set(prepared.test().rows.tolist())
    np.testing.assert_array_equal(data.val_masks, prepared.masks[data.val_rows])
    # Every mask is its source row's lesion: as is for real and synthetic images, mirrored for the flipped set.
    source_masks = np.asarray(prepared.masks[data.train_source_rows])
    flipped = data.train_part == PART_FLIPPED
    np.testing.assert_array_equal(data.train_masks[~flipped], source_masks[~flipped])
    np.testing.assert_array_equal(data.train_masks[flipped], source_masks[flipped][:, :, ::-1])
    assert flipped.sum() == (N_FIT if copies == 2 else 0)
    assert (data.train_part == PART_SYNTHETIC).sum() == (N_FIT if copies else 0)
    real_part = np.isin(data.train_part, (PART_REAL, PART_REAL_REPEAT))
    np.testing.assert_array_equal(data.train_images[real_part], prepared.images[data.train_source_rows[real_part]])


def test_real2x_lists_the_real_images_twice(project: dict[str, Path]) -> None:
    prepared = load_prepared(project["prepared"])
    real = assemble_training_set(prepared, project["synthetic"], N_TRAIN, "real")
    doubled = assemble_training_set(prepared, project["synthetic"], N_TRAIN, "real2x")
    np.testing.assert_array_equal(doubled.train_images, np.concatenate([real.train_images] * 2))
    np.testing.assert_array_equal(doubled.train_source_rows, np.concatenate([real.train_source_rows] * 2))
    assert doubled.n_train_synthetic == 0


def test_synthetic_errors_name_the_problem(project: dict[str, Path]) -> None:
    prepared = load_prepared(project["prepared"])
    with pytest.raises(FileNotFoundError, match="cyclegan"):
        assemble_training_set(prepared, project["synthetic"], N_TRAIN, "cyclegan")
    with pytest.raises(FileNotFoundError, match="GAN seed 5"):
        assemble_training_set(prepared, project["synthetic"], N_TRAIN, "dfgan", gan_seed=5)
    # A synthetic set grown from a test lesion must never reach training ...
    write_synthetic(project["synthetic"], project["prepared"], N_TRAIN, "leaky", np.array([0, 1, 2, N_TRAIN]))
    with pytest.raises(ValueError, match="outside"):
        assemble_training_set(prepared, project["synthetic"], N_TRAIN, "leaky")
    # ... nor one grown from a validation lesion (it was made before the validation split was fixed).
    val_row = int(prepared.val(N_TRAIN).rows[0])
    write_synthetic(project["synthetic"], project["prepared"], N_TRAIN, "stale", np.array([val_row]))
    with pytest.raises(ValueError, match="outside"):
        assemble_training_set(prepared, project["synthetic"], N_TRAIN, "stale")


def test_steps_schedule_gives_every_condition_the_same_steps(project: dict[str, Path]) -> None:
    prepared = load_prepared(project["prepared"])
    config = tiny_seg(schedule="steps", epochs=3, budget_factor=2.0, batch_size=4)
    schedule = make_schedule(config, len(prepared.train(N_TRAIN)))
    assert schedule.steps_per_round == int(np.ceil(2.0 * N_FIT / 4)) == 3
    augmentation = build_augmentation(NoAugmentation(), S)
    counts = {}
    for condition in ("real", "real2x", "dfgan", "dfgan2x"):
        data = assemble_training_set(prepared, project["synthetic"], N_TRAIN, condition)
        rounds = [list(batches) for batches in training_rounds(data, augmentation, schedule, 0, torch.device("cpu"))]
        counts[condition] = [len(r) for r in rounds]
        assert all(len(images) == 4 for r in rounds for images, _ in r)  # full batches only
    assert all(c == [3, 3, 3] for c in counts.values()), counts
    # The literal protocol: one pass per round, so R + 2S takes three times the steps of R.
    epochs = make_schedule(tiny_seg(schedule="epochs", epochs=2, batch_size=2), N_FIT)
    passes = {}
    for condition in ("real", "dfgan2x"):
        data = assemble_training_set(prepared, project["synthetic"], N_TRAIN, condition)
        passes[condition] = [len(list(b)) for b in training_rounds(data, augmentation, epochs, 0, torch.device("cpu"))]
    assert passes == {"real": [3, 3], "dfgan2x": [9, 9]}


@pytest.mark.slow  # starts worker processes
@pytest.mark.parametrize("kind", ["steps", "epochs"])
def test_loader_workers_repeat_exactly_for_a_seed_and_worker_count(project: dict[str, Path], kind: str) -> None:
    data = assemble_training_set(load_prepared(project["prepared"]), project["synthetic"], N_TRAIN, "dfgan", 0)
    augmentation = build_augmentation(CLASSIC, int(data.train_images.shape[-1]))
    schedule = make_schedule(tiny_seg(schedule=kind, epochs=2), N_TRAIN)

    def draws(workers: int, seed: int) -> list[torch.Tensor]:
        torch.manual_seed(123)  # the global RNG must not matter with workers: each is seeded from the seed alone
        rounds = training_rounds(data, augmentation, schedule, seed, torch.device("cpu"), workers)
        return [image for batches in rounds for image, _ in batches]

    first, again = draws(2, seed=0), draws(2, seed=0)
    assert len(first) == len(again) > 2
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    other_seed = draws(2, seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(first, other_seed))


def test_cycling_sampler_draws_every_image_equally_often() -> None:
    sampler = CyclingBatchSampler(5, 3, total_steps=10, generator=torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert len(batches) == len(sampler) == 10 and all(len(b) == 3 for b in batches)
    counts = np.bincount(np.concatenate(batches), minlength=5)
    assert counts.tolist() == [6] * 5  # 30 draws = 6 whole permutations


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


CLASSIC = ClassicAugmentation(hflip_p=0.5, rotate_degrees=10.0, crop_scale_min=0.8, crop_ratio_max=1.1, elastic_p=0.3,
                              elastic_alpha=20.0, elastic_sigma=4.0)


def tiny_seg(aug: str = "classic", **overrides: Any) -> SegConfig:
    """A small U-Net++ run config (random resnet18 weights, narrow decoder, one round)."""
    config = SegConfig(
        encoder="resnet18", decoder_channels=(32, 16, 8, 8, 4), encoder_weights=None, encoder_weights_path=None,
        seeds=(0, 1), schedule="steps", epochs=1, patience=None, min_rounds=1, budget_factor=2.0, batch_size=4, lr=0.001,
        bce_weight=1.0, dice_weight=1.0, threshold=0.5, device="auto", compile="off", cuda_graphs=False, workers=0,
        augment_on="loader", aug=aug, augmentation=CLASSIC if aug == "classic" else NoAugmentation(),
    )
    return dataclasses.replace(config, **overrides)


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
        project["prepared"], project["synthetic"], N_TRAIN, "dfgan2x", tiny_seg("classic"), [0, 1],
        SegRunPaths(per_image_path.parent, per_image_path, metrics_path, live_dir), deterministic=False,
    )
    print(f"tiny run_condition (2 seeds x 1 epoch, 32x32): {time.perf_counter() - start:.1f} s")

    written = json.loads(metrics_path.read_text())
    assert written == result
    assert 0.0 <= written["dice_mean"] <= 1.0 and written["dice_sem"] >= 0.0
    assert len(written["dice_per_seed"]) == 2 and written["rounds"] == 1 and written["schedule"] == "steps"
    assert written["gan_seed_per_seed"] == [0, 1]  # seed k reads GAN seed k mod 2
    assert written["optimizer_steps"] == written["steps_per_round"] == 3  # ceil(2.0 x 6 / 4)
    assert written["images_seen"] == 12 and written["best_step_per_seed"] == [3, 3]
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


def test_an_unknown_augmentation_is_refused() -> None:
    with pytest.raises(KeyError, match="heavy"):
        SegConfig.of(load_settings(REPO / "params.yaml").seg, "heavy")


@pytest.mark.slow  # seconds alone; tens of seconds on a shared 2-core box
def test_run_condition_repeats_exactly_for_a_seed(
    project: dict[str, Path], one_thread: None
) -> None:
    out = project["root"]
    config = tiny_seg("classic", seeds=(3,))
    runs = [
        run_condition(
            project["prepared"], project["synthetic"], N_TRAIN, "pix2pix", config, [0],
            SegRunPaths(out, out / f"p{i}.csv", out / f"m{i}.json", out / f"live{i}"), deterministic=False,
        )
        for i in range(2)
    ]
    assert runs[0]["dice_per_seed"] == runs[1]["dice_per_seed"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "p0.csv"), pd.read_csv(out / "p1.csv"))
    assert runs[0]["dice_sem"] == 0.0  # one seed: no spread


def test_augment_on_device_moves_classic_augmentation_from_the_loader_to_the_batch() -> None:
    cpu = torch.device("cpu")
    config = tiny_seg("classic", augment_on="device")
    per_sample, per_batch = build_seed_augmentation(config, 32, seed=0, device=cpu)
    assert per_batch is not None and per_sample is identity_augmentation  # the loader only converts
    for aug, on in (("classic", "loader"), ("none", "device"), ("none", "loader")):
        per_sample, per_batch = build_seed_augmentation(tiny_seg(aug, augment_on=on), 32, seed=0, device=cpu)
        assert per_batch is None
        assert (per_sample is identity_augmentation) == (aug == "none")

    # Every training batch passes through the batch augmentation, after it is on the device, with its own draw.
    seen: list[torch.Tensor] = []

    def spy(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(images)
        return images, masks

    images = torch.rand(4, 1, 32, 32) * 2 - 1
    masks = (images > 0.5).float()
    model = build_model("resnet18", None, decoder_channels=[32, 16, 8, 8, 4])
    optimizer = torch.optim.Adam(model.parameters())
    _, steps, _ = train_batches(model, iter([(images, masks)] * 3), BceDiceLoss(1.0, 1.0), optimizer, cpu, spy)
    assert steps == 3 and len(seen) == 3

    _, augment = build_seed_augmentation(config, 32, seed=5, device=cpu)
    _, again = build_seed_augmentation(config, 32, seed=5, device=cpu)
    first, repeat = augment(images, masks), again(images, masks)
    assert torch.equal(first[0], repeat[0]) and torch.equal(first[1], repeat[1])  # seeded: repeats exactly
    assert not torch.equal(augment(images, masks)[0], first[0])  # the next batch gets a new draw
    assert set(first[1].unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("kind", ["steps", "epochs"])
def test_images_on_the_device_give_the_loaders_batches(project: dict[str, Path], kind: str) -> None:
    """Without per-sample work the images stay on the device (uint8) and the loader only draws the order: the
    batches are those the per-sample loader path yields (here forced with an identity that is not the identity)."""
    prepared = load_prepared(project["prepared"])
    data = assemble_training_set(prepared, project["synthetic"], N_TRAIN, "dfgan", 0)
    schedule = make_schedule(tiny_seg(schedule=kind, epochs=3, batch_size=4), N_FIT)
    cpu = torch.device("cpu")
    on_device = [list(r) for r in training_rounds(data, identity_augmentation, schedule, 7, cpu)]
    per_sample = [list(r) for r in training_rounds(data, lambda i, m: (i, m), schedule, 7, cpu)]
    assert [len(r) for r in on_device] == [len(r) for r in per_sample] and len(on_device) == 3
    for a_round, b_round in zip(on_device, per_sample):
        for (a_images, a_masks), (b_images, b_masks) in zip(a_round, b_round):
            assert torch.equal(a_images, b_images) and torch.equal(a_masks, b_masks)
            assert a_images.dtype == b_images.dtype == a_masks.dtype == torch.float32


def test_train_batches_sums_the_loss_on_the_device_as_python_floats_did() -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", None, decoder_channels=[32, 16, 8, 8, 4])
    batches = [(torch.rand(n, 1, 32, 32) * 2 - 1, (torch.rand(n, 1, 32, 32) > 0.7).float()) for n in (4, 3, 4)]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loss_fn = BceDiceLoss(1.0, 1.0)
    mean, steps, images = train_batches(model, iter(batches), loss_fn, torch.optim.Adam(model.parameters()),
                                        torch.device("cpu"))
    model.load_state_dict(state)
    optimizer = torch.optim.Adam(model.parameters())
    model.train()
    total = 0.0
    for x, y in batches:  # the loop as it was: a host read of every step's loss
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(x)
    assert (steps, images) == (3, 11) and mean == total / 11


@pytest.mark.slow  # two tiny run_condition calls
def test_seg_cuda_graphs_are_ignored_on_cpu_with_one_line_and_change_nothing(
    project: dict[str, Path], one_thread: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dfgan.core import speed

    monkeypatch.setattr(speed, "_NOTICES", set())
    out = project["root"]
    tables = []
    for graphs in (False, True):
        config = tiny_seg("classic", seeds=(0, 1), augment_on="device", cuda_graphs=graphs, device="cpu")
        run_condition(project["prepared"], project["synthetic"], N_TRAIN, "real", config, [0],
                      SegRunPaths(out, out / f"p{graphs}.csv", out / f"m{graphs}.json", out / f"live{graphs}"),
                      deterministic=False)
        tables.append(pd.read_csv(out / f"p{graphs}.csv"))
        lines = [line for line in capsys.readouterr().out.splitlines() if "cuda_graphs" in line]
        assert lines == (["seg.cuda_graphs: ignored, CUDA graphs need a CUDA device (running on cpu)"] if graphs else [])
    pd.testing.assert_frame_equal(tables[0], tables[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_a_captured_unet_step_gives_the_eager_losses() -> None:
    from benchmarks.graph_compare import captured_vs_eager_seg

    comparison = captured_vs_eager_seg(tiny_seg(), 32, torch.device("cuda"), steps=7)
    assert comparison.used and comparison.replays == 7 - comparison.warmup, comparison.problem
    assert comparison.differences["loss"] < 1e-4, comparison.differences
