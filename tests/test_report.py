"""The report on fake segmentation metrics: table layout, paper columns, missing inputs, shrunk sizes, figures."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from dfgan.core.paths import REPORT_FILES, run_label, seg_run
from dfgan.core.settings import ReportSettings
from dfgan.data.prepared_arrays import save_prepared
from dfgan.gan.synthetic_sets import synthetic_path
from dfgan.report import paper_results
from dfgan.report.build import ReportConfig, build_report, results_guide
from dfgan.seg.training_sets import REAL, uses_synthetic
from stages import report as report_stage

ROOT = Path(__file__).resolve().parents[1]

S = 32
CONDITIONS = ["real2x", "pix2pix", "dfgan", "dfgan2x"]
# Fake Dice per condition; classic augmentation adds 0.1 to each. Per image and seed, a shared term is added that
# pairing must cancel: every paired difference is then exactly the difference of these numbers.
FAKE_DICE = {REAL: 0.2, "real2x": 0.2, "real+flip": 0.21, "real+paste": 0.2, "real+paste2x": 0.22, "real+fresh": 0.28,
             "pix2pix": 0.25, "dfgan": 0.3, "dfgan2x": 0.32}
SEEDS = (0, 1, 2)
N_TEST = 4
AUG_BONUS = {"none": 0.0, "classic": 0.1}


def write_inputs(
    root: Path, sizes: Sequence[int], conditions: Sequence[str], gan_seeds: Sequence[int] = (0, 1, 2)
) -> dict[str, Path]:
    """A prepared set with nested subsets of every size, synthetic sets for every size, and fake metrics JSONs;
    U-Net++ seed k of a GAN condition trained on GAN seed ``gan_seeds[k]`` (default: one GAN per seed)."""
    rng = np.random.default_rng(0)
    n_test = N_TEST
    n_rows = max(sizes) + n_test
    images = rng.integers(0, 256, (n_rows, S, S), dtype=np.uint8)
    masks = np.zeros((n_rows, S, S), np.uint8)
    masks[:, 8:20, 10:18] = 1
    index = pd.DataFrame({"row": range(n_rows), "image_id": [f"id{i}" for i in range(n_rows)]})
    prepared = root / "prepared"
    save_prepared(prepared, images, masks, index, np.arange(max(sizes), n_rows), {s: np.arange(s) for s in sizes}, 0)

    synthetic = root / "synthetic"
    for size in sizes:
        for variant in ("pix2pix", "dfgan"):
            rows = np.arange(size, dtype=np.int64)[::-1].copy()
            path = synthetic_path(synthetic, size, variant, 0)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(
                path, images=images[rows], masks=masks[rows], source_rows=rows,
                flipped_images=images[rows][:, :, ::-1], flipped_masks=masks[rows][:, :, ::-1],
                flipped_source_rows=rows,
            )

    seg, seg_data = root / "metrics" / "seg", root / "data" / "seg"
    shared = 0.05 * np.sin(np.add.outer(np.arange(len(SEEDS)), np.arange(n_test)))  # seed x image effects
    for size in sizes:
        for condition in [REAL, *conditions]:
            for aug in ("none", "classic"):
                path = seg_run(size, condition, aug, metrics_root=seg).metrics_path
                path.parent.mkdir(parents=True, exist_ok=True)
                dice = FAKE_DICE[condition] + AUG_BONUS[aug]
                gans = list(gan_seeds) if uses_synthetic(condition) else [None] * len(SEEDS)
                path.write_text(json.dumps({
                    "dice_mean": dice, "dice_sem": 0.01, "dice_per_seed": [dice] * 3, "seeds": list(SEEDS),
                    "gan_seed_per_seed": gans, "rounds": 4, "best_round_per_seed": [4, 2, 3],
                    "optimizer_steps_per_seed": [40, 40, 40], "empty_fraction": 0.25,
                }))
                per_image = seg_run(size, condition, aug, data_root=seg_data).per_image_path
                per_image.parent.mkdir(parents=True, exist_ok=True)
                pd.DataFrame(
                    [{"seed": seed, "row": max(sizes) + i, "dice": dice + shared[k, i], "empty_prediction": False}
                     for k, seed in enumerate(SEEDS) for i in range(n_test)]
                ).to_csv(per_image, index=False)
    return {"prepared": prepared, "synthetic": synthetic, "seg": seg, "seg_data": seg_data,
            "out": root / "metrics" / "report"}


REPORT = ReportSettings(sample_count=4, primary="dfgan-classic", level=0.95, min_units=3, primary_sizes=None,
                        gate=("real+paste", "pix2pix"), power=0.8, equivalence_margin=0.05, failed_dice=0.1,
                        failed_empty_share=0.5)


def run_report(paths: dict[str, Path], sizes: Sequence[int], conditions: Sequence[str], **report: Any) -> dict:
    report = dataclasses.replace(REPORT, **report)
    config = ReportConfig(tuple(sizes), tuple(conditions), gan_seed=0, fid_weights={"dfgan": 0.01}, report=report)
    return build_report(config, paths["seg"], paths["seg_data"], paths["synthetic"], paths["out"], paths["prepared"])


def test_report_writes_the_papers_layout_beside_ours(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path, [16, 100], CONDITIONS)
    summary = run_report(paths, [16, 100], CONDITIONS)
    out = paths["out"]

    table1 = json.loads((out / "table1.json").read_text())
    expected_rows = [(16, "no"), (16, "yes"), (100, "no"), (100, "yes")]
    assert [(r["size"], r["classic_aug"]) for r in table1["rows"]] == expected_rows
    by_key = {(r["size"], r["aug"]): r for r in table1["rows"]}
    assert by_key[(16, "none")]["paper"] is None  # the paper has no 16-image column
    assert by_key[(100, "none")]["paper"]["real"] == {"mean": 0.256, "sem": 0.015}
    assert by_key[(100, "classic")]["paper"]["dfgan"] == {"mean": 0.382, "sem": 0.008}
    assert by_key[(100, "classic")]["dfgan"]["mean"] == pytest.approx(0.4)
    markdown = (out / "table1.md").read_text()
    assert "Pix2Pix" in markdown and "DF-GAN" in markdown and "SIIM-ACR" in markdown
    # Without classic augmentation every difference is exploratory: a raw interval, never bold; with it, R + S
    # (DF-GAN) - R is the primary and DF-GAN - Pix2Pix the gate's secondary (no noise: se 0, both significant).
    ours = (
        "0.200 ± 0.010 | 0.200 ± 0.010 | +0.000 [+0.000, +0.000] expl., ≡ within margin | 0.250 ± 0.010 "
        "| +0.050 [+0.050, +0.050] expl., MDE 0.000 | 0.300 ± 0.010 | +0.100 [+0.100, +0.100] expl., MDE 0.000 "
        "| +0.050 [+0.050, +0.050] expl., MDE 0.000"
    )
    paper = "0.256 ± 0.015 | 0.322 ± 0.010"
    assert f"| 100 | no | {ours} | {paper} |" in markdown
    row_100_yes = next(line for line in markdown.splitlines() if line.startswith("| 100 | yes |"))
    assert "**+0.100 [+0.100, +0.100]** primary" in row_100_yes and "**+0.050 [+0.050, +0.050]** gate" in row_100_yes
    row_16_yes = next(line for line in markdown.splitlines() if line.startswith("| 16 | yes |"))
    assert row_16_yes.startswith("| 16 | yes | 0.300 ± 0.010 | 0.300 ± 0.010 |") and row_16_yes.endswith("| — | — |")
    delta = by_key[(100, "none")]["delta_vs_real"]["dfgan"]
    assert delta["mean"] == pytest.approx(0.1) and not delta["significant"] and delta["family"] == "exploratory"
    assert by_key[(100, "classic")]["delta_vs_real"]["dfgan"]["significant"]
    assert delta["n_seeds"] == 3

    table2 = json.loads((out / "table2.json").read_text())
    assert len(table2["rows"]) == 4 and table2["rows"][0]["synthetic2x"]["mean"] == pytest.approx(0.32)
    assert table2["paper"]["synthetic2x"] == {"mean": 0.39, "sem": 0.011}
    assert table2["rows"][0]["delta_vs_real"]["synthetic2x"]["mean"] == pytest.approx(0.12)
    assert "0.390 ± 0.011" in (out / "table2.md").read_text()
    assert "| 0.320 ± 0.010 | +0.120 [+0.120, +0.120] expl., MDE 0.000 |" in (out / "table2.md").read_text()

    curve = pd.read_csv(out / "dice_vs_size.csv")
    plotted = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"][0]
    assert list(curve.columns) == ["size", "run", plotted["Dice vs training size"]["y"]["metrics/report/dice_vs_size.csv"]]
    assert sorted(set(curve["run"])) == sorted(run_label(c, a) for a in ("none", "classic") for c in [REAL, *CONDITIONS])
    assert curve.groupby("run")["size"].apply(list).apply(sorted).tolist() == [[16, 100]] * 10
    dice = curve.set_index(["size", "run"])["dice"]
    assert dice[(100, "real+dfgan-classic")] - dice[(100, "real-none")] == pytest.approx(0.2)  # + 0.1 DF-GAN, + 0.1 aug

    gains = pd.read_csv(out / "improvement.csv")
    assert list(gains.columns) == ["size"] + [f"{c}-{a}" for a in ("none", "classic") for c in CONDITIONS]
    assert gains["dfgan-none"].tolist() == pytest.approx([0.5, 0.5])  # (0.3 - 0.2) / 0.2
    assert gains["pix2pix-classic"].tolist() == pytest.approx([0.05 / 0.3] * 2)

    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["largest_size"] == 100
    assert summary["dice_at_largest_size"]["real+dfgan-none"] == pytest.approx(0.3)
    assert summary["mean_improvement_over_real"]["dfgan-none"] == pytest.approx(0.5)
    contrasts = summary["contrasts"]
    assert contrasts["16/real+dfgan2x-classic-vs-real"]["mean"] == pytest.approx(0.12)
    assert contrasts["16/real+dfgan2x-classic-vs-real"]["family"] == "exploratory"
    assert contrasts["100/real+dfgan-none-vs-pix2pix"]["ci_low"] == pytest.approx(0.05)
    assert contrasts["100/real+dfgan-classic-vs-real"]["family"] == "primary"
    assert contrasts["100/real+dfgan-classic-vs-pix2pix"]["family"] == "gate"
    assert contrasts["100/real+dfgan-none-vs-real"]["unit"] == "gan"
    assert contrasts["100/real2x-none-vs-real"]["unit"] == "seed"
    assert summary["significant_after_adjustment"] == [
        "100/real+dfgan-classic-vs-pix2pix", "100/real+dfgan-classic-vs-real", "16/real+dfgan-classic-vs-pix2pix",
        "16/real+dfgan-classic-vs-real"]
    assert summary["primary"] == {"name": "dfgan-classic", "variant": "dfgan", "aug": "classic", "lambda_fid": 0.01,
                                  "sizes": [16, 100]}
    assert summary["oracle_detected"] is None  # no R + fresh trained: questions.md says so at the top
    assert "No positive control" in (out / "questions.md").read_text()
    assert summary["failed_seeds"]["share"] == 0.0
    assert summary["best_round_last_share"]["16/real-none"] == pytest.approx(1 / 3)

    for name in ("fig4_improvement.png", "dice_vs_size.png", "forest.png"):
        assert cv2.imread(str(out / name)) is not None, name
    samples = cv2.imread(str(out / "fig3_samples.png"))
    assert samples.shape[0] == 3 * (128 + 2)  # rows: real | Pix2Pix | DF-GAN, tiles upscaled to 128


def test_missing_metrics_file_is_named(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path, [16], CONDITIONS)
    missing = seg_run(16, "dfgan", "classic", metrics_root=paths["seg"]).metrics_path
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=r"real\+dfgan-classic\.json"):
        run_report(paths, [16], CONDITIONS)


def test_shrunk_sizes_leave_no_stale_rows(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path, [16, 32], CONDITIONS)
    run_report(paths, [16, 32], CONDITIONS)
    run_report(paths, [16], CONDITIONS)  # the size-32 metrics are still on disk, but no longer in params
    out = paths["out"]
    assert json.loads((out / "table1.json").read_text())["sizes"] == [16]
    assert "| 32 |" not in (out / "table1.md").read_text()
    assert "| 32 |" not in (out / "table2.md").read_text()
    assert set(pd.read_csv(out / "dice_vs_size.csv")["size"]) == {16}
    assert pd.read_csv(out / "improvement.csv")["size"].tolist() == [16]
    assert json.loads((out / "summary.json").read_text())["largest_size"] == 16


def test_conditions_not_run_are_marked_not_invented(tmp_path: Path) -> None:
    conditions = ["pix2pix", "dfgan2x"]  # the e2e test's tiny profile: no plain DF-GAN run
    paths = write_inputs(tmp_path, [16], conditions)
    run_report(paths, [16], conditions)
    out = paths["out"]
    table1 = (out / "table1.md").read_text()
    assert ("| 16 | no | 0.200 ± 0.010 | not run | — | 0.250 ± 0.010 | +0.050 [+0.050, +0.050] expl., MDE 0.000 "
            "| not run | — | — |") in table1
    table2 = (out / "table2.md").read_text()
    assert ("| this run | 16 | no | 0.200 ± 0.010 | not run | — | 0.320 ± 0.010 | +0.120 [+0.120, +0.120] expl., "
            "MDE 0.000 |") in table2
    assert list(pd.read_csv(out / "improvement.csv").columns) == [
        "size", "pix2pix-none", "dfgan2x-none", "pix2pix-classic", "dfgan2x-classic",
    ]


def test_paper_numbers_and_improvement_ratios() -> None:
    assert paper_results.PAPER_SIZES == (50, 100, 250, 500, 1000, 2000)
    assert paper_results.paper_table1("none", 2000)[1].mean == 0.504
    assert paper_results.paper_table1("classic", 16) is None
    assert paper_results.paper_improvement("none")[50] == pytest.approx((0.28 - 0.232) / 0.232)
    assert paper_results.paper_improvement("none")[250] < 0  # the paper's one clear loss, kept as published


def test_results_guide_names_every_file_the_report_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    report_stage.main(["--where"])  # before any run: says so instead of listing files
    assert "No report in metrics/report/ yet" in capsys.readouterr().out

    paths = write_inputs(tmp_path / "data", [16], ["dfgan"])
    paths["out"] = tmp_path / "metrics" / "report"
    run_report(paths, [16], ["dfgan"])
    assert sorted(p.name for p in paths["out"].iterdir()) == sorted(REPORT_FILES)
    report_stage.main(["--where"])
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  metrics/report/")]
    assert listed == [f"metrics/report/{name}" for name in REPORT_FILES]


def test_report_stage_reads_params_and_writes_metrics_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    paths = write_inputs(data, [16], ["dfgan"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics").mkdir()
    (data / "metrics" / "seg").rename(tmp_path / "metrics" / "seg")
    (data / "data" / "seg").rename(tmp_path / "data" / "seg")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(sizes=[16], variants=["dfgan"])
    params["seg"].update(real_conditions=["real"], flipped_variants=[])
    params["report"].update(sample_count=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert paths["prepared"] == tmp_path / "data" / "prepared" and paths["synthetic"] == tmp_path / "data" / "synthetic"
    report_stage.main(["--params", "params.yaml"])
    assert json.loads((tmp_path / "metrics/report/summary.json").read_text())["largest_size"] == 16
    assert (tmp_path / "metrics/report/fig3_samples.png").is_file()


def test_one_gan_seed_gives_no_interval_and_no_bold_gan_contrast(tmp_path: Path) -> None:
    """The demo's design: 2 U-Net++ seeds on 1 GAN. GAN contrasts have 1 replicate: a mean, no interval, never bold;
    the note says why. Contrasts without a GAN use the U-Net++ seeds (3 here) and keep their interval."""
    conditions = ["real2x", "real+paste", "dfgan"]
    paths = write_inputs(tmp_path, [16], conditions, gan_seeds=(0, 0, 0))
    summary = run_report(paths, [16], conditions)
    contrasts = summary["contrasts"]
    gan = contrasts["16/real+dfgan-none-vs-real"]
    assert gan["n_units"] == 1 and gan["ci_low"] is None and gan["p_adjusted"] is None and not gan["significant"]
    assert not any("real+dfgan" in key for key in summary["significant_after_adjustment"])
    assert contrasts["16/real+paste-none-vs-real"]["n_units"] == 3 and contrasts["16/real+paste-none-vs-real"]["ci_low"] is not None
    table1 = (paths["out"] / "table1.md").read_text()
    assert "+0.100 (no interval)" in table1 and "**+0.100" not in table1
    assert "1 GAN seed" in table1 and "never bold" in table1
    controls = (paths["out"] / "controls.md").read_text()
    assert "| 16 | no | R + paste (control) | 0.200 ± 0.010 |" in controls
    assert "R + S (DF-GAN (λ_FID 0.01)): +0.100 (no interval)" in controls  # GAN vs its control, no interval
    convergence = (paths["out"] / "convergence.md").read_text()
    assert "| 16 | R | no | 0 of 3 | 4 | 33% | 4, 2, 3 | 40 | 25% |" in convergence


def test_bold_follows_the_questions_and_exploratory_intervals_stay_raw(tmp_path: Path) -> None:
    """Noisy fake data: a question's cell is bold exactly when its adjusted interval excludes 0, never wider than
    its raw one; exploratory contrasts keep their raw interval and are never significant."""
    conditions = [*CONDITIONS, "real+paste", "real+fresh"]
    paths = write_inputs(tmp_path, [16, 32], conditions)
    rng = np.random.default_rng(5)
    for csv in paths["seg_data"].rglob("per_image.csv"):
        frame = pd.read_csv(csv)
        frame["dice"] += rng.normal(0, 0.03, len(frame))
        frame.to_csv(csv, index=False)
    summary = run_report(paths, [16, 32], conditions)
    families = {d["family"] for d in summary["contrasts"].values()}
    assert families == {"oracle", "primary", "gate", "exploratory"}
    for key, d in summary["contrasts"].items():
        assert d["mde"] is not None and d["mde"] > 0 and d["equivalent"] in (True, False)
        if d["family"] == "exploratory":
            assert not d["significant"] and (d["adjusted_low"], d["adjusted_high"]) == (d["ci_low"], d["ci_high"])
            continue
        if not d["tested"]:  # behind a closed gate
            assert d["family"] == "gate" and d["adjusted_low"] is None and not d["significant"]
            continue
        assert d["p_adjusted"] >= d["p"] - 1e-12
        assert d["adjusted_low"] <= d["ci_low"] + 1e-9 and d["adjusted_high"] >= d["ci_high"] - 1e-9
        assert d["significant"] == (d["adjusted_low"] > 0 or d["adjusted_high"] < 0), key
        assert d["significant"] == (key in summary["significant_after_adjustment"])
    # The gate's order: R + S - R + paste before DF-GAN - Pix2Pix, at the primary's augmentation only.
    gate = [k for k, d in summary["contrasts"].items() if d["family"] == "gate"]
    assert gate == ["16/real+dfgan-classic-vs-real+paste", "16/real+dfgan-classic-vs-pix2pix",
                    "32/real+dfgan-classic-vs-real+paste", "32/real+dfgan-classic-vs-pix2pix"]
    oracle = [k for k, d in summary["contrasts"].items() if d["family"] == "oracle"]
    assert oracle == ["16/real+fresh-classic-vs-real", "32/real+fresh-classic-vs-real"]
    worth = summary["synthetic_worth"]["32/pix2pix-classic"]
    assert worth["ratio"] == pytest.approx(worth["gan_gain"] / worth["oracle_gain"], abs=1e-5)
    questions = (paths["out"] / "questions.md").read_text()
    assert "## 1. Can this run detect a gain that exists? (the oracle)" in questions
    assert "ρ = Δ_GAN / Δ_oracle" in questions


def test_primary_sizes_restrict_the_questions(tmp_path: Path) -> None:
    conditions = [*CONDITIONS, "real+fresh"]
    paths = write_inputs(tmp_path, [16, 32], conditions)
    summary = run_report(paths, [16, 32], conditions, primary_sizes=(32,), gate=("pix2pix",))
    families = {k: d["family"] for k, d in summary["contrasts"].items()}
    assert families["32/real+dfgan-classic-vs-real"] == "primary"
    assert families["16/real+dfgan-classic-vs-real"] == "exploratory"  # a size the design was not declared for
    assert families["32/real+fresh-classic-vs-real"] == "oracle"
    assert families["16/real+fresh-classic-vs-real"] == "exploratory"
    assert summary["primary"]["sizes"] == [32]


def test_a_skipped_oracle_is_left_out_and_named(tmp_path: Path) -> None:
    conditions = [*CONDITIONS, "real+fresh"]
    paths = write_inputs(tmp_path, [16, 32], conditions)
    for aug in ("none", "classic"):  # the seg stage's output when the pool is too small
        run = seg_run(32, "real+fresh", aug, metrics_root=paths["seg"], data_root=paths["seg_data"])
        run.metrics_path.write_text(json.dumps({"size": 32, "condition": "real+fresh", "aug": aug,
                                                "skipped": "size 32 needs 25 fresh positives, the pool has 3"}))
        pd.DataFrame(columns=["seed", "row", "dice", "empty_prediction"]).to_csv(run.per_image_path, index=False)
    summary = run_report(paths, [16, 32], conditions)
    assert "32/real+fresh-classic-vs-real" not in summary["contrasts"]
    assert "16/real+fresh-classic-vs-real" in summary["contrasts"]
    assert "skipped: size 32 needs 25 fresh positives" in (paths["out"] / "questions.md").read_text()
    row = next(r for r in json.loads((paths["out"] / "table1.json").read_text())["rows"] if r["size"] == 32)
    assert row["real+fresh"] is None
    curve = pd.read_csv(paths["out"] / "dice_vs_size.csv")
    fresh = curve[curve["run"].str.startswith("real+fresh-")]
    assert sorted(fresh["run"]) == ["real+fresh-classic", "real+fresh-none"] and set(fresh["size"]) == {16}


@pytest.mark.parametrize("conditions", [
    ["real2x", "real+fresh", "pix2pix", "dfgan", "dfgan2x"],  # the default profile's
    ["real+paste", "real+fresh", "pix2pix", "dfgan"],  # the evidence profile's: no R x2, no R + 2S
])
def test_dvc_draws_the_dice_curve_of_any_profile(conditions: list[str], tmp_path: Path) -> None:
    """`dvc plots show` with the project's plot definition and template draws a line per run the report wrote,
    whichever conditions the profile trains (a fixed column list in dvc.yaml failed on the evidence profile)."""
    paths = write_inputs(tmp_path / "inputs", [16, 32], conditions)
    run_report(paths, [16, 32], conditions)
    repo = tmp_path / "repo"
    (repo / "metrics/report").mkdir(parents=True)
    shutil.copy(paths["out"] / "dice_vs_size.csv", repo / "metrics/report/dice_vs_size.csv")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=repo, check=True, env=env)
    shutil.copytree(ROOT / ".dvc/plots", repo / ".dvc/plots")
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, sort_keys=False))
    shown = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json", "Dice vs training size"],
                           cwd=repo, capture_output=True, text=True, check=True, env=env)
    rendered = json.loads(shown.stdout)
    assert "errors" not in rendered, rendered
    (plot,) = rendered["data"]["Dice vs training size"]
    values = plot["content"]["data"]["values"]
    assert plot["content"]["encoding"]["color"]["field"] == "run"
    drawn = {(int(v["size"]), v["run"]) for v in values}
    assert drawn == {(s, run_label(c, a)) for s in (16, 32) for a in ("none", "classic") for c in [REAL, *conditions]}


def test_failed_seeds_are_counted_per_run(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path, [16], CONDITIONS)
    metrics_path = seg_run(16, "real", "none", metrics_root=paths["seg"]).metrics_path
    metrics = json.loads(metrics_path.read_text())
    metrics.update(best_round_per_seed=[1, 3, 4], dice_per_seed=[0.05, 0.3, 0.3])  # seed 0 kept round 1, Dice 0.05
    metrics_path.write_text(json.dumps(metrics))
    csv = seg_run(16, "real", "classic", data_root=paths["seg_data"]).per_image_path
    frame = pd.read_csv(csv)
    frame.loc[frame["seed"] == 2, "empty_prediction"] = True  # seed 2 predicts nothing anywhere
    frame.to_csv(csv, index=False)
    summary = run_report(paths, [16], CONDITIONS)
    runs = summary["failed_seeds"]["runs"]
    assert runs["16/real-none"] == {"failed": 1, "seeds": 3, "which": [0]}
    assert runs["16/real-classic"] == {"failed": 1, "seeds": 3, "which": [2]}
    assert summary["failed_seeds"]["share"] == pytest.approx(2 / 30)
    convergence = (paths["out"] / "convergence.md").read_text()
    assert "| 16 | R | no | 1 of 3 (0) |" in convergence
    assert "Failed seeds: 2 of 30 seed-runs:" in (paths["out"] / "questions.md").read_text()


def test_the_readme_lists_every_report_file_as_the_run_prints_them(tmp_path: Path, monkeypatch) -> None:
    readme = (ROOT / "README.md").read_text()
    monkeypatch.chdir(tmp_path)
    out = Path("metrics/report")
    out.mkdir(parents=True)
    for name in REPORT_FILES:
        (out / name).write_text("")
    assert results_guide(out) in readme, "README's 'Results:' block differs from `python -m stages.report --where`"


def test_the_banner_says_why_the_gan_contrasts_cannot_be_read() -> None:
    from dfgan.report.questions import banner

    def oracle(significant: bool, equivalent: bool) -> dict:
        return {(50, "real+fresh", "classic", "real"): {"family": "oracle", "significant": significant,
                                                         "equivalent": equivalent}}

    assert banner(oracle(True, False), {}) is None
    assert "could not detect its own oracle gain" in banner(oracle(False, False), {})
    small = banner(oracle(False, True), {})  # the v3 evidence run with augmentation: +0.005, within +-0.05
    assert "less than the equivalence margin" in small and "More U-Net++ seeds" not in small
    assert "No positive control" in banner({}, {})
