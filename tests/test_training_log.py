"""PlainLive (the stand-in where DVCLive is not installed) writes the files DVCLive writes for the trainers' calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfgan.core.training_log import PlainLive, open_live


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _log(live, resume_part: bool = False) -> None:
    """The calls gan/training.py and seg/fit.py make: set step, nested and flat names, unplotted metrics, summaries."""
    with live:
        for i in range(3):
            live.step = i * 4 + (10 if resume_part else 0)
            live.log_metric("seed0/train_loss", 1.0 / (i + 1))
            live.log_metric("fid_train", 2.5 * i)
            live.make_summary()
        live.log_metric("seed0/test_dice", 0.25, plot=False)
        live.next_step()


@pytest.mark.parametrize("resume", [False, True])
def test_plain_live_writes_what_dvclive_writes(tmp_path: Path, resume: bool) -> None:
    from dvclive import Live

    made = {}
    for name, make in {
        "dvclive": lambda d, r: Live(dir=str(d), resume=r, dvcyaml=None, save_dvc_exp=False, report=None),
        "plain": PlainLive,
    }.items():
        directory = tmp_path / name
        _log(make(directory, False))
        if resume:
            live = make(directory, True)
            assert live.step == 9  # after the step of the last summary (8)
            _log(live, resume_part=True)
        made[name] = _files(directory)
    assert made["plain"] == made["dvclive"]
    assert "plots/metrics/seed0/train_loss.tsv" in made["plain"]


def test_a_new_plain_live_starts_from_empty_curves(tmp_path: Path) -> None:
    _log(PlainLive(tmp_path))
    live = PlainLive(tmp_path)
    live.log_metric("other", 1.0)
    live.end()
    assert sorted(_files(tmp_path)) == ["metrics.json", "plots/metrics/other.tsv"]


def test_open_live_falls_back_without_dvclive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "dvclive", None)  # `import dvclive` now raises ImportError
    live = open_live(tmp_path / "run")
    assert isinstance(live, PlainLive)
