"""The controls without a GAN: R + flip, R + paste, R + paste 2x (exact masks, only the N training images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dfgan.core.params_file import load_settings
from dfgan.core.paths import run_label
from dfgan.core.settings import with_values
from dfgan.data.prepared_arrays import load_prepared
from dfgan.seg.training_sets import (
    PART_MIRRORED, PART_PASTED, PART_PASTED_FLIPPED, PART_REAL, assemble_training_set, condition_title,
    paste_hosts, paste_lesions, parse_condition, trained_conditions, uses_synthetic,
)
from fakes import blob_xrays, save_fake_prepared

N_POOL, N_TEST, SIZE = 10, 4, 32


@pytest.fixture()
def prepared_dir(tmp_path: Path) -> Path:
    images, masks = blob_xrays(N_POOL + N_TEST, SIZE, seed=3)
    return save_fake_prepared(tmp_path / "prepared", images, masks, N_POOL, [N_POOL], val_fraction=0.2)


def test_control_names_parse_as_gan_free_conditions() -> None:
    for name, parts in (("real+flip", (PART_MIRRORED,)), ("real+paste", (PART_PASTED,)),
                        ("real+paste2x", (PART_PASTED, PART_PASTED_FLIPPED))):
        parsed = parse_condition(name)
        assert (parsed.variant, parsed.copies, parsed.extra_parts) == (None, 0, parts)
        assert not uses_synthetic(name)
        assert run_label(name, "none") == f"{name}-none"  # the file names dvc.yaml's seg_real stage writes
    assert condition_title("real+paste") == "R + paste (control)"
    assert condition_title("dfgan", {"dfgan": 0.01}) == "R + S (DF-GAN (λ_FID 0.01))"
    settings = with_values(load_settings(Path(__file__).resolve().parents[1] / "params.yaml"), {
        "seg.real_conditions": ["real", "real+paste"], "seg.flipped_variants": [], "variants": ["dfgan"],
    })
    assert trained_conditions(settings) == ["real", "real+paste", "dfgan"]


@pytest.mark.parametrize("n", [2, 3, 7, 40])
def test_paste_hosts_is_a_derangement_each_image_hosting_once(n: int) -> None:
    for seed in range(5):
        hosts = paste_hosts(n, seed, salt=1)
        assert sorted(hosts.tolist()) == list(range(n))  # every image hosts exactly one lesion
        assert not np.any(hosts == np.arange(n))  # no lesion is pasted into its own image
    assert not np.array_equal(paste_hosts(40, 0, 1), paste_hosts(40, 1, 1))  # the seed picks the hosts
    with pytest.raises(ValueError, match="at least 2"):
        paste_hosts(1, 0, 1)


def test_paste_keeps_lesion_pixels_and_unions_the_masks() -> None:
    images = np.array([np.full((4, 4), 10), np.full((4, 4), 200)], np.uint8)
    masks = np.zeros((2, 4, 4), np.uint8)
    masks[0, 0, 0] = 1  # lesion of image 0: pixel (0, 0)
    masks[1, 3, 3] = 1  # lesion of image 1: pixel (3, 3)
    pasted, union = paste_lesions(images, masks, images, masks, np.array([1, 0]))
    # Result 0 = host image 1 with lesion 0's pixel; its mask = both lesions.
    assert pasted[0, 0, 0] == 10 and pasted[0, 1, 1] == 200
    assert union[0].sum() == 2 and union[0, 0, 0] == 1 and union[0, 3, 3] == 1
    assert pasted[1, 3, 3] == 200 and pasted[1, 0, 0] == 10 and union[1].sum() == 2
    assert pasted.dtype == np.uint8 and union.dtype == np.uint8


@pytest.mark.parametrize("condition", ["real+flip", "real+paste", "real+paste2x"])
def test_controls_assemble_from_the_training_images_only(prepared_dir: Path, condition: str) -> None:
    prepared = load_prepared(prepared_dir)
    real = prepared.train(N_POOL)
    data = assemble_training_set(prepared, prepared_dir / "no-synthetic-needed", N_POOL, condition, seed=4)
    n, parts = len(real), parse_condition(condition).extra_parts
    assert data.n_train == n * (1 + len(parts)) and data.n_train_real == n and data.n_train_synthetic == 0
    assert data.n_train_control == n * len(parts)
    np.testing.assert_array_equal(data.train_images[data.train_part == PART_REAL], real.images)
    real_images, real_masks = np.asarray(real.images), np.asarray(real.masks)
    for part in parts:
        images, masks = data.train_images[data.train_part == part], data.train_masks[data.train_part == part]
        if part == PART_MIRRORED:
            np.testing.assert_array_equal(images, real_images[:, :, ::-1])
            np.testing.assert_array_equal(masks, real_masks[:, :, ::-1])
            continue
        lesions = real_masks[:, :, ::-1] if part == PART_PASTED_FLIPPED else real_masks
        lesion_pixels = real_images[:, :, ::-1] if part == PART_PASTED_FLIPPED else real_images
        # Every pasted lesion is inside its new mask with its real pixels; every other pixel is a training image's.
        assert np.all(masks[lesions != 0] == 1)
        np.testing.assert_array_equal(images[lesions != 0], lesion_pixels[lesions != 0])
        for k in range(n):
            outside = lesions[k] == 0
            host = [h for h in range(n) if np.array_equal(images[k][outside], real_images[h][outside])]
            assert len(host) == 1 and host[0] != k
            np.testing.assert_array_equal(masks[k], np.maximum(lesions[k], real_masks[host[0]]))
    # No validation or test image is used, as host or as lesion.
    assert set(data.train_source_rows.tolist()) == set(real.rows.tolist())
    again = assemble_training_set(prepared, prepared_dir, N_POOL, condition, seed=4)
    np.testing.assert_array_equal(again.train_images, data.train_images)  # the seed fixes the hosts
