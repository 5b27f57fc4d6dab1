"""The committed evidence run can be checked by anyone: its lock file holds exactly its own stages, and every file of
its report (every paired difference, MDE, verdict, failed seed) recomputes from its committed per-image Dice and
metrics files with today's code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dfgan.core.params_file import load_settings
from dfgan.report.build import ReportConfig, build_report, load_per_image_dice
from tests.dvc_pipeline import ROOT, expand

V2 = ROOT / "docs/evidence/phantom-64px-50-100-v2"
V3 = ROOT / "docs/evidence/phantom-64px-50-v3"
RUNS = pytest.mark.parametrize("evidence", [V2, V3], ids=["v2", "v3"])


@RUNS
def test_the_evidence_lock_holds_exactly_the_stages_of_its_params(evidence: Path) -> None:
    params = yaml.safe_load((evidence / "params.yaml").read_text())
    lock = yaml.safe_load((evidence / "dvc.lock").read_text())
    assert set(lock["stages"]) == {stage.name for stage in expand(params)}


def test_v2s_params_are_the_profile_it_ran_in_todays_schema() -> None:
    # v2 ran params_evidence.yaml of commit 4e79cf2; the keys added since hold the values that reproduce what it ran
    # (seg.min_rounds 1: early stopping from round 1) or only steer the report (RUN.md says which).
    assert load_settings(V2 / "params.yaml").seg.min_rounds == 1


def test_v3_ran_the_evidence_profile_as_committed() -> None:
    assert (V3 / "params.yaml").read_text() == (ROOT / "params_evidence.yaml").read_text()


@pytest.mark.slow  # builds the report (seconds to tens of seconds)
@RUNS
def test_every_evidence_report_file_rebuilds_from_the_runs_own_files(evidence: Path, tmp_path: Path) -> None:
    """Every number of report/ (tables, questions, summary.json, convergence) recomputes from the committed
    per-image Dice and metrics with today's code: `python -m stages.report --evidence DIR` rebuilt it."""
    config = ReportConfig.of(load_settings(evidence / "params.yaml"))
    out = tmp_path / "report"
    rebuilt = build_report(config, evidence / "metrics/seg", evidence / "per_image", None, out)
    committed = evidence / "report"
    text_files = sorted(p.name for p in out.iterdir() if p.suffix in (".md", ".json", ".csv"))
    assert "questions.md" in text_files and "summary.json" in text_files
    for name in text_files:
        assert (out / name).read_text() == (committed / name).read_text(), f"{name} differs from the rebuilt one"
    assert json.loads((committed / "summary.json").read_text()) == rebuilt


@pytest.mark.slow
def test_a_changed_dice_value_changes_the_rebuilt_report(tmp_path: Path) -> None:
    evidence = V2
    run = tmp_path / "run"
    shutil.copytree(evidence / "per_image", run / "per_image")
    csv = run / "per_image/50/real-classic/per_image.csv"
    frame = pd.read_csv(csv)
    frame.loc[0, "dice"] = 1.0 - frame.loc[0, "dice"]
    frame.to_csv(csv, index=False)
    config = ReportConfig.of(load_settings(evidence / "params.yaml"))
    build_report(config, evidence / "metrics/seg", run / "per_image", None, tmp_path / "report")
    assert (tmp_path / "report/summary.json").read_text() != (evidence / "report/summary.json").read_text()


@RUNS
def test_every_evidence_run_has_its_per_image_file_and_seeds(evidence: Path) -> None:
    params = yaml.safe_load((evidence / "params.yaml").read_text())
    config = ReportConfig.of(load_settings(evidence / "params.yaml"))
    files = sorted((evidence / "per_image").rglob("per_image.csv"))
    seg_stages = [s for s in expand(params) if s.name.startswith("seg_")]
    assert files and len(files) == len(seg_stages)  # one file per seg stage; it holds every seed's rows
    per_image = load_per_image_dice(evidence / "per_image", list(config.sizes), config.conditions)
    for key, table in per_image.items():
        assert sorted(table.index) == sorted(set(params["seg"]["seeds"])), key
