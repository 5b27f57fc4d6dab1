"""End-to-end runs of the real DVC stages on tiny params, in temporary git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dfgan.data.phantom import generate_phantom
from tests.pipeline_repo import ReproducedPipeline, make_pipeline_repo, run, stages_run

pytestmark = pytest.mark.slow


def test_phantom_and_prepare_repro(tmp_path: Path) -> None:
    repo = make_pipeline_repo(tmp_path / "repo")
    first = run(["dvc", "repro", "prepare"], repo)
    assert stages_run(first.stdout) == {"phantom@default", "prepare"}
    assert len(list((repo / "data/raw/phantom/dicom-images-train").rglob("*.dcm"))) == 16
    assert (repo / "data/raw/phantom/train-rle.csv").read_text().startswith("ImageId, EncodedPixels")
    images = np.load(repo / "data/prepared/images.npy")
    assert images.shape[1:] == (32, 32) and images.dtype == np.uint8
    data_metrics = json.loads((repo / "metrics/data.json").read_text())
    assert data_metrics["kept"] == len(images)

    # A second repro does nothing.
    second = run(["dvc", "repro", "prepare"], repo)
    assert stages_run(second.stdout) == set()

    # Changing data.image_size reruns prepare, not phantom.
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["image_size"] = 64
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = run(["dvc", "repro", "prepare"], repo)
    assert stages_run(third.stdout) == {"prepare"}
    assert np.load(repo / "data/prepared/images.npy").shape[1:] == (64, 64)


def test_real_data_takes_the_phantom_out_of_the_pipeline(tmp_path: Path) -> None:
    """With data.raw_dir at the user's own tree and phantom.generate: [], plain `dvc repro` never makes a phantom."""
    repo = make_pipeline_repo(
        tmp_path / "repo", {"phantom": {"generate": []}, "data": {"raw_dir": "data/raw/siim"}}
    )
    generate_phantom(repo / "data/raw/siim", count=16, positive_fraction=0.8, image_size=128, seed=5)
    stages = run(["dvc", "stage", "list", "--name-only"], repo).stdout.split()
    assert "prepare" in stages and not [s for s in stages if s.startswith("phantom")]
    dag = run(["dvc", "dag", "--md"], repo).stdout
    assert "prepare" in dag and "phantom" not in dag

    assert stages_run(run(["dvc", "repro", "prepare"], repo).stdout) == {"prepare"}
    assert not (repo / "data/raw/phantom").exists()
    index = pd.read_csv(repo / "data/prepared/index.csv")
    assert all((repo / "data/raw/siim" / path).is_file() for path in index.dicom_path)


def test_whole_pipeline_then_lambda_l1_experiment(tiny_pipeline: ReproducedPipeline) -> None:
    repo = tiny_pipeline.repo  # after its first `dvc repro` (shared with test_parallel_pipeline, which read it first)
    ran = stages_run(tiny_pipeline.output)
    gans = {f"{stage}@4-{variant}-{seed}" for stage in ("train_gan", "synthesize")
            for variant in ("pix2pix", "dfgan") for seed in (0, 1)}
    segs = {f"seg_synth@4-{v}-{a}" for v in ("pix2pix", "dfgan") for a in ("none", "classic")}
    segs |= {f"seg_synth2x@4-dfgan-{a}" for a in ("none", "classic")}
    controls = {f"seg_real@4-{c}-{a}" for c in ("real", "real+paste", "real+fresh") for a in ("none", "classic")}
    assert {"phantom@default", "prepare", "report"} | controls | gans | segs <= ran

    table1 = (repo / "metrics/report/table1.md").read_text()
    assert "pix2pix" in table1.lower() and "df-gan" in table1.lower() and "Δ" in table1
    seg = json.loads((repo / "metrics/seg/4/real+dfgan2x-none.json").read_text())
    assert 0.0 <= seg["dice_mean"] <= 1.0 and len(seg["dice_per_seed"]) == 2
    assert seg["gan_seed_per_seed"] == [0, 1]  # U-Net++ seed k trains on GAN seed k's images
    real = json.loads((repo / "metrics/seg/4/real-none.json").read_text())
    assert real["optimizer_steps"] == seg["optimizer_steps"]  # the steps schedule: equal budgets
    for seed in (0, 1):
        synth = np.load(repo / f"data/synthetic/4/dfgan/s{seed}/synthetic.npz")
        assert synth["images"].shape == synth["flipped_images"].shape == (3, 32, 32)  # 4 less 1 validation image
    summary = json.loads((repo / "metrics/report/summary.json").read_text())
    versus_real = {key.split("/")[1] for key in summary["contrasts"] if key.endswith("-vs-real")}
    assert versus_real == {
        f"{run}-{aug}-vs-real" for run in ("real+paste", "real+fresh", "real+pix2pix", "real+dfgan", "real+dfgan2x")
        for aug in ("none", "classic")
    }
    primary = summary["contrasts"]["4/real+dfgan-classic-vs-real"]
    assert primary["family"] == "primary" and primary["unit"] == "gan" and primary["n_units"] == 2
    assert primary["mde"] is not None and primary["equivalent"] in (True, False)
    assert summary["contrasts"]["4/real+fresh-classic-vs-real"]["family"] == "oracle"
    assert summary["contrasts"]["4/real+dfgan-classic-vs-pix2pix"]["family"] == "gate"
    assert summary["primary"]["lambda_fid"] == 0.01 and summary["oracle_detected"] in (True, False)
    assert set(summary["synthetic_worth"]) == {"4/pix2pix-classic", "4/dfgan-classic"}
    fresh = json.loads((repo / "metrics/seg/4/real+fresh-none.json").read_text())
    assert fresh["n_train_fresh"] == fresh["n_train_real"] == 3 and fresh["skipped"] is None
    assert "## 1. Can this run detect a gain that exists? (the oracle)" in (
        repo / "metrics/report/questions.md").read_text()
    assert summary["contrasts"]["4/real+paste-none-vs-real"]["unit"] == "seed"
    assert (repo / "metrics/report/controls.md").read_text().count("R + paste (control)") >= 2

    assert stages_run(run(["dvc", "repro"], repo).stdout) == set()
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "baseline results"], repo)

    # A changed Pix2Pix synthetic set reruns Pix2Pix's segmentation runs, never DF-GAN's.
    stray = repo / "data/synthetic/4/pix2pix/s0/stray.txt"
    stray.write_text("changed")
    dry = stages_run(run(["dvc", "repro", "--dry"], repo).stdout)
    assert {"synthesize@4-pix2pix-0", "seg_synth@4-pix2pix-none", "seg_synth@4-pix2pix-classic", "report"} == dry
    stray.unlink()
    assert stages_run(run(["dvc", "repro", "--dry"], repo).stdout) == set()

    exp = run(["dvc", "exp", "run", "-S", "gan.lambda_l1=50"], repo)
    reran = stages_run(exp.stdout)
    assert reran == gans | segs | {"report"}
    shown = run(["dvc", "exp", "show", "--md", "--no-pager"], repo).stdout
    assert "gan.lambda_l1" in shown or "lambda_l1" in shown
    diff = run(["dvc", "metrics", "diff", "HEAD", "--all", "--md"], repo).stdout
    assert "dice_mean" in diff and "contrasts" in diff
