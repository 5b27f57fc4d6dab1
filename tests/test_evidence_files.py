"""The committed evidence run can be checked by anyone: its lock file holds exactly its own stages, and every
paired difference of its report recomputes from its committed per-image Dice files with today's code."""

from __future__ import annotations

import json

import pytest
import yaml

from dfgan.core.params_file import load_settings
from dfgan.report.build import ReportConfig, delta_summary, load_per_image_dice, load_seg_metrics
from dfgan.report.contrasts import all_conditions, all_contrasts
from tests.dvc_pipeline import ROOT, expand

EVIDENCE = ROOT / "docs/evidence/phantom-64px-50-100-v2"


def test_the_evidence_lock_holds_exactly_the_stages_of_its_params() -> None:
    params = yaml.safe_load((EVIDENCE / "params.yaml").read_text())
    lock = yaml.safe_load((EVIDENCE / "dvc.lock").read_text())
    assert set(lock["stages"]) == {stage.name for stage in expand(params)}


def test_the_evidence_params_are_the_evidence_profile() -> None:
    assert yaml.safe_load((EVIDENCE / "params.yaml").read_text()) == yaml.safe_load(
        (ROOT / "params_evidence.yaml").read_text())


def test_every_evidence_interval_recomputes_from_its_per_image_files() -> None:
    config = ReportConfig.of(load_settings(EVIDENCE / "params.yaml"))
    sizes, report = list(config.sizes), config.report
    results = load_seg_metrics(EVIDENCE / "metrics/seg", sizes, config.conditions)
    per_image = load_per_image_dice(EVIDENCE / "per_image", sizes, config.conditions)
    deltas = all_contrasts(per_image, results, all_conditions(config.conditions), sizes, report.primary,
                           report.level, report.min_units)
    committed = json.loads((EVIDENCE / "report/summary.json").read_text())["contrasts"]
    recomputed = {contrast.key: delta_summary(delta) for contrast, delta in deltas.items()}
    assert set(recomputed) == set(committed)
    for key, numbers in committed.items():
        for name, value in numbers.items():
            expected = recomputed[key][name]
            if isinstance(value, float):
                assert expected == pytest.approx(value, abs=2e-6), (key, name)
            else:
                assert expected == value, (key, name)


def test_every_evidence_run_has_its_per_image_file_and_seeds() -> None:
    params = yaml.safe_load((EVIDENCE / "params.yaml").read_text())
    config = ReportConfig.of(load_settings(EVIDENCE / "params.yaml"))
    files = sorted((EVIDENCE / "per_image").rglob("per_image.csv"))
    seg_stages = [s for s in expand(params) if s.name.startswith("seg_")]
    assert files and len(files) == len(seg_stages)  # one file per seg stage; it holds every seed's rows
    per_image = load_per_image_dice(EVIDENCE / "per_image", list(config.sizes), config.conditions)
    for key, table in per_image.items():
        assert sorted(table.index) == sorted(set(params["seg"]["seeds"])), key
