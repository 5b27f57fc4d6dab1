"""Synthesis: shapes, exact and flipped masks, lesion pasting, seeding, metrics; plus the stage entry points."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from dfgan.core.params_file import load_params
from dfgan.core.paths import SynthRunPaths
from dfgan.core.settings import settings_from
from dfgan.data.prepared_arrays import load_prepared
from dfgan.gan.fid import write_reference_stats
from dfgan.gan.networks import build_generator
from dfgan.gan.synthesis import SynthesisConfig, synthesize
from dfgan.gan.generator import save_generator
from tests.fakes import TinyExtractor, blob_xrays, save_fake_prepared

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def make_prepared(directory: Path, image_size: int, n_train: int = 6, n_test: int = 3, seed: int = 1) -> Path:
    """Blob 'X-rays' with bright lesions in the left half (so the flip moves them); subsets of 3 and n_train."""
    images, masks = blob_xrays(
        n_train + n_test, image_size, seed, lesion_x=(0.1, 0.45), lesion_radius=(0.08, 0.15), lesion_contrast=70.0
    )
    return save_fake_prepared(directory, images, masks, n_train, [3, n_train], seed)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Prepared data at 64 px, tiny-extractor statistics and an (untrained) generator saved like train_gan does."""
    root = tmp_path_factory.mktemp("synth")
    torch.manual_seed(0)
    prepared = make_prepared(root / "prepared", 64)
    extractor = TinyExtractor()
    write_reference_stats(prepared, [3, 6], root / "stats", batch_size=4, device=CPU, extractor=extractor)
    spec = {"image_size": 64, "in_channels": 1, "out_channels": 1, "ngf": 8, "norm": "batch", "dropout": 0.5,
            "mask_channel": False}
    save_generator(build_generator(64, 1, 8, dropout=0.5), spec, root / "model")
    params = copy.deepcopy(load_params(REPO / "params.yaml"))
    params["gan"]["batch_size"] = 4
    params["synth"].update(preview_count=3, device="cpu")
    return {"root": root, "prepared": prepared, "stats": root / "stats", "extractor": extractor, "params": params}


def run(setup: dict[str, Any], name: str, **synth: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    params = copy.deepcopy(setup["params"])
    params["synth"].update(synth)
    out = setup["root"] / name
    files = SynthRunPaths(setup["root"] / "model", out, out / "metrics.json")
    metrics = synthesize(setup["prepared"], 6, "dfgan", 0, SynthesisConfig.of(settings_from(params)), files,
                         stats_dir=setup["stats"], extractor=setup["extractor"])
    with np.load(out / "synthetic.npz") as data:
        return metrics, {k: data[k] for k in data.files}


def test_synthetic_sets_have_exact_and_flipped_masks(setup: dict[str, Any]) -> None:
    metrics, arrays = run(setup, "default")
    train = load_prepared(setup["prepared"]).train(6)
    assert arrays["images"].shape == arrays["flipped_images"].shape == (6, 64, 64)
    assert arrays["images"].dtype == np.uint8 and arrays["masks"].dtype == np.uint8
    assert arrays["source_rows"].dtype == np.int64 and arrays["flipped_source_rows"].dtype == np.int64
    np.testing.assert_array_equal(arrays["source_rows"], train.rows)
    np.testing.assert_array_equal(arrays["flipped_source_rows"], train.rows)
    np.testing.assert_array_equal(arrays["masks"], train.masks)
    for mask, flipped in zip(train.masks, arrays["flipped_masks"]):
        np.testing.assert_array_equal(flipped, np.fliplr(mask))
    assert (setup["root"] / "default" / "preview.png").is_file()
    assert metrics["images"] == 6
    for group in ("primary", "primary_flipped"):
        for reference in ("train", "test"):
            values = metrics[group][reference]
            assert set(values) == {"fid", "kid_mean", "kid_std"} and all(np.isfinite(list(values.values())))
    assert json.loads((setup["root"] / "default" / "metrics.json").read_text()) == metrics


def test_pasted_lesions_are_the_real_pixels(setup: dict[str, Any]) -> None:
    _, arrays = run(setup, "pasted", paste_lesion=True)
    train = load_prepared(setup["prepared"]).train(6)
    inside = train.masks > 0
    np.testing.assert_array_equal(arrays["images"][inside], train.images[inside])
    flipped_real = train.images[:, :, ::-1]
    flipped_inside = arrays["flipped_masks"] > 0
    np.testing.assert_array_equal(arrays["flipped_images"][flipped_inside], flipped_real[flipped_inside])
    _, raw = run(setup, "raw", paste_lesion=False)
    assert not np.array_equal(raw["images"][inside], train.images[inside])  # untrained G: far from the real pixels


def test_train_mode_is_seeded_noise_and_eval_mode_ignores_the_seed(setup: dict[str, Any]) -> None:
    _, first = run(setup, "seed_a", train_mode=True, seed=3)
    _, again = run(setup, "seed_b", train_mode=True, seed=3)
    _, other = run(setup, "seed_c", train_mode=True, seed=4)
    np.testing.assert_array_equal(first["images"], again["images"])
    assert not np.array_equal(first["images"], other["images"])  # dropout noise differs
    _, eval_a = run(setup, "eval_a", train_mode=False, seed=3)
    _, eval_b = run(setup, "eval_b", train_mode=False, seed=4)
    np.testing.assert_array_equal(eval_a["images"], eval_b["images"])


@pytest.mark.slow
def test_stage_entry_points_end_to_end(tmp_path: Path) -> None:
    """fid_stats -> train_gan -> synthesize as the pipeline runs them (real Inception, tiny sizes, 2 epochs)."""
    make_prepared(tmp_path / "data" / "prepared", 32, n_train=4, n_test=2)
    params = copy.deepcopy(load_params(REPO / "params.yaml"))
    params["sizes"] = [3, 4]
    params["data"]["image_size"] = 32
    params["fid"]["batch_size"] = 8
    params["data"]["val_fraction"] = 0.0  # as the prepared data above (no validation rows)
    params["gan"].update(ngf=8, ndf=8, batch_size=3, n_epochs=1, n_epochs_decay=1, fid_eval_every=2, device="cpu")
    params["synth"].update(device="cpu")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(REPO), "DFGAN_NO_PROGRESS": "1"}

    def stage(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    stage("stages.fid_stats")
    stats_dir = tmp_path / "data" / "fid_stats"
    assert sorted(p.name for p in stats_dir.iterdir()) == ["test.npz", "train_3.npz", "train_4.npz"]
    before = (stats_dir / "test.npz").stat().st_mtime_ns
    stage("stages.fid_stats", "--split", "train", "--size", "3")  # the per-size form leaves other files alone
    assert (stats_dir / "test.npz").stat().st_mtime_ns == before and (stats_dir / "train_4.npz").is_file()
    stage("stages.train_gan", "--size", "4", "--variant", "dfgan", "--seed", "0")
    assert (tmp_path / "models" / "gan" / "4_dfgan_s0" / "generator.pt").is_file()
    assert not (tmp_path / "checkpoints" / "gan" / "4_dfgan_s0.pt").exists()  # gan.keep_checkpoint: false
    gan_metrics = json.loads((tmp_path / "metrics" / "gan" / "4_dfgan_s0.json").read_text())
    assert gan_metrics["epochs"] == 2 and np.isfinite(gan_metrics["fid_train"]) and gan_metrics["seed"] == 0
    stage("stages.synthesize", "--size", "4", "--variant", "dfgan", "--seed", "0")
    with np.load(tmp_path / "data" / "synthetic" / "4" / "dfgan" / "s0" / "synthetic.npz") as data:
        assert data["images"].shape == (4, 32, 32)
    synth_metrics = json.loads((tmp_path / "metrics" / "synth" / "4_dfgan_s0.json").read_text())
    assert np.isfinite(synth_metrics["primary_flipped"]["test"]["fid"])
