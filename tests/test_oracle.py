"""The oracle condition real+fresh (fresh real positives: the next rows of the training order), the early-stopping
rule with seg.min_rounds, and what counts as a failed U-Net++ seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfgan.core.paths import SegRunPaths, live_plots
from dfgan.data.prepared_arrays import NotEnoughFresh, load_prepared, save_prepared, split_pools
from dfgan.seg.experiment import run_condition
from dfgan.seg.fit import stops_early
from dfgan.seg.stability import SeedOutcome, failed_seeds, is_failed
from dfgan.seg.training_sets import PART_FRESH, PART_REAL, assemble_training_set, condition_title, parse_condition
from tests.test_segmentation import blob_images, tiny_seg

POOL, TEST = 12, 4


def make_ranked(directory: Path, sizes: tuple[int, ...] = (4, 8)) -> Path:
    """A prepared set whose training order is a shuffled permutation (as prepare writes it): rows 0..3 test."""
    images, masks = blob_images(POOL + TEST, 32, seed=1)
    order = np.random.default_rng(3).permutation(np.arange(TEST, POOL + TEST))
    rank = np.full(POOL + TEST, -1)
    rank[order] = np.arange(POOL)
    index = pd.DataFrame({"row": range(POOL + TEST), "image_id": [f"id{i}" for i in range(POOL + TEST)],
                          "split": np.where(rank >= 0, "train", "test"), "train_rank": rank})
    train, val = split_pools({s: order[:s] for s in sizes}, 0.25, seed=0)
    save_prepared(directory, images, masks, index, np.arange(TEST), train, 0, val, 0.25)
    return directory


def test_fresh_rows_follow_the_pool_and_touch_nothing_else(tmp_path: Path) -> None:
    prepared = load_prepared(make_ranked(tmp_path / "prepared"))
    ranks = prepared.index.set_index("row")["train_rank"]
    fresh = prepared.fresh(4)
    assert len(fresh) == len(prepared.train(4)) == 3  # as many as the GAN adds: one per training lesion
    assert sorted(ranks[fresh.rows]) == [4, 5, 6]  # the next rows of the training order
    used = np.concatenate([prepared.train(4).rows, prepared.val(4).rows, prepared.test().rows])
    assert not np.isin(fresh.rows, used).any()
    assert np.array_equal(fresh.images, prepared.images[fresh.rows])
    with pytest.raises(NotEnoughFresh, match=r"size 8 needs 6 fresh training positives .* has only 4"):
        prepared.fresh(8)


def test_real_fresh_trains_on_r_plus_the_fresh_images(tmp_path: Path) -> None:
    prepared = load_prepared(make_ranked(tmp_path / "prepared"))
    data = assemble_training_set(prepared, tmp_path / "no-synthetic", 4, "real+fresh")
    assert list(data.train_part) == [PART_REAL] * 3 + [PART_FRESH] * 3
    assert data.n_train_fresh == 3 and data.n_train_real == 3 and data.n_train_control == 0
    assert np.array_equal(data.train_source_rows[3:], prepared.fresh(4).rows)
    assert np.array_equal(data.train_images[3:], prepared.images[prepared.fresh(4).rows])
    assert parse_condition("real+fresh").variant is None and condition_title("real+fresh") == "R + fresh (oracle)"


def test_the_oracle_is_skipped_with_one_line_where_the_pool_is_too_small(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepared = make_ranked(tmp_path / "prepared")
    out = tmp_path / "out"
    files = SegRunPaths(out / "seg", out / "seg" / "per_image.csv", out / "metrics.json", out / "dvclive")
    metrics = run_condition(prepared, tmp_path / "synthetic", 8, "real+fresh", tiny_seg("none"), [0], files,
                            deterministic=False)
    assert metrics["skipped"].startswith("size 8 needs 6 fresh training positives")
    assert json.loads(files.metrics_path.read_text()) == metrics
    assert pd.read_csv(files.per_image_path).empty
    assert live_plots(files.live_dir).is_dir()  # DVC declares the curves folder of every seg stage
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("8 real+fresh: skipped:")


def test_early_stopping_waits_for_min_rounds() -> None:
    # The diagnosed death: round 1 scores a chance Dice above 0, rounds 2-5 predict nothing (Dice 0), patience 4
    # stops at round 5 and round 1 is kept. With min_rounds 8 the seed trains on to round 8 at least.
    assert stops_early(5, best_round=1, patience=4, min_rounds=1)
    assert not stops_early(5, best_round=1, patience=4, min_rounds=8)
    assert stops_early(8, best_round=1, patience=4, min_rounds=8)
    assert not stops_early(9, best_round=6, patience=4, min_rounds=8)
    assert not stops_early(40, best_round=1, patience=None, min_rounds=1)


def test_a_failed_seed_never_learned_to_segment() -> None:
    kept_first = SeedOutcome(best_round=1, rounds=15, test_dice=0.05, empty_fraction=0.2)
    empty = SeedOutcome(best_round=9, rounds=15, test_dice=0.3, empty_fraction=0.6)
    fine = SeedOutcome(best_round=1, rounds=15, test_dice=0.35, empty_fraction=0.1)  # a good first round is no death
    late = SeedOutcome(best_round=15, rounds=15, test_dice=0.02, empty_fraction=0.5)  # poor, but learned (not dead)
    assert failed_seeds([kept_first, empty, fine, late]) == [True, True, False, False]
    assert is_failed(late, empty_share=0.4) and not is_failed(kept_first, min_dice=0.01)
    assert late.still_improving and not fine.still_improving
