"""The GPU check's driver and verdicts (benchmarks/gpu_check.py, gpu_check_steps.py, graph_compare.py) on a CPU:
every step ends with a STEP line, a step past its deadline is killed with its process group and keeps the lines it
printed, a CUDA graph that fell back to eager steps is a failure, and the committed dry run reported every step."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import gpu_check
from benchmarks.gpu_check import STEPS, run_step

ROOT = Path(__file__).resolve().parents[1]
DRY_RUN_FILE = ROOT / "benchmarks" / "gpu_runs" / "2026-12-07-cpu-dry-run-results.txt"
STEP_LINE = re.compile(r"^STEP (?P<name>\S+) (?P<status>ok|fail|timeout|skipped) (?P<seconds>[\d.]+)", re.M)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_step_reports_ok_fail_skipped_and_a_timeout_keeps_its_lines_and_kills_its_group(tmp_path: Path) -> None:
    lines: list[str] = []
    assert run_step("a", python("print('measured')"), 30, lines.append)[0] == "ok"
    assert run_step("b", python("import sys; sys.exit(1)"), 30, lines.append)[0] == "fail"
    assert run_step("c", python("import sys; sys.exit(3)"), 30, lines.append)[0] == "skipped"
    # A step that runs over its limit, with a child of its own: both are killed, what it printed is kept.
    child = tmp_path / "child.pid"
    code = (f"import subprocess, time; p = subprocess.Popen(['sleep', '60']); open({str(child)!r}, 'w').write(str(p.pid)); "
            "print('partial result', flush=True); time.sleep(60)")
    started = time.monotonic()
    status, seconds = run_step("d", python(code), 3, lines.append)
    assert status == "timeout" and 3 <= seconds < 15 and time.monotonic() - started < 15
    assert lines[0] == "measured" and "partial result" in lines
    assert [line for line in lines if line.startswith("STEP")] == [
        line for line in lines if STEP_LINE.match(line)] and len(STEP_LINE.findall("\n".join(lines))) == 4
    assert re.match(r"^STEP d timeout [\d.]+ \(limit 3 s\)$", lines[-1])
    assert not running(int(child.read_text()))


def running(pid: int) -> bool:
    """Whether a process runs (a killed child whose parent is gone may stay a zombie where nobody reaps it)."""
    for _ in range(20):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.1)
    return True


def test_the_driver_reports_every_step_in_order_and_skips_what_is_past_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fake steps: 'graphs' hangs until it is killed at the deadline, every other step prints a line and passes.
    monkeypatch.setattr(gpu_check, "step_command", lambda name, config: python(
        "import time; time.sleep(60)" if name == "graphs" else f"print('ran {name}')"))
    monkeypatch.setenv("DRY_RUN", "1")
    monkeypatch.setenv("DEADLINE", "6")
    assert gpu_check.main([str(tmp_path / "out"), "--steps", "setup,graphs,timing,estimate"]) == 1
    text = (tmp_path / "out" / "results.txt").read_text()
    steps = [(m["name"], m["status"]) for m in STEP_LINE.finditer(text)]
    assert [name for name, _ in steps] == [s.name for s in STEPS]
    assert steps[:2] == [("setup", "ok"), ("graphs", "timeout")]
    assert all(status == "skipped" for _, status in steps[2:])  # past the deadline, or not selected
    assert "STEP timing skipped 0.0 (past the 6 s deadline)" in text and "STEP profile skipped 0.0 (not selected)" in text
    assert "ran setup" in text and "ran timing" not in text
    assert re.search(r"^steps: ok setup; fail -; timeout graphs; skipped timing profile memory concurrent estimate$",
                     text, re.M), text
    config = (tmp_path / "out" / "check.json").read_text()
    assert '"dry_run": true' in config and '"size": 32' in config


def test_the_step_limits_fit_eight_minutes_on_a_gpu_and_five_in_a_dry_run() -> None:
    assert [s.item for s in STEPS] == ["-", "a", "b", "c", "d", "e", "f"]  # the priority order
    assert sum(s.limit for s in STEPS) <= 450 and sum(s.dry_limit for s in STEPS) <= 300


def test_a_step_fails_on_a_failed_item_and_is_skipped_only_when_every_item_was() -> None:
    from benchmarks.gpu_check_steps import SKIPPED_EXIT, Report

    report = Report()
    report.check("graphs x", None, "no CUDA")
    assert report.exit_status() == SKIPPED_EXIT
    report.record("TIME", model="x", per_step_ms=1.5)
    assert report.exit_status() == 0
    with report.guard("timing y"):
        raise ModuleNotFoundError("No module named 'segmentation_models_pytorch'\nmore")
    assert report.statuses[-1] == "fail" and report.exit_status() == 1


def comparison(**changes: object) -> object:
    from benchmarks.graph_compare import GraphComparison

    fields = dict(steps=8, differences={"loss_G": 2e-6, "lr": 0.0}, problem=None, replays=5, warmup=3,
                  rates=[1.5e-4, 1e-4])
    return GraphComparison(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_graph_that_fell_back_to_eager_fails_however_equal_its_losses() -> None:
    from benchmarks.graph_compare import comparison_verdict

    ok, detail = comparison_verdict(comparison(), 1e-3)  # type: ignore[arg-type]
    assert ok and "5 of 5 calls after 3 eager warm-up steps replayed" in detail and "lr after 2 scheduler" in detail
    fallback = comparison(problem="the capture failed and 5 call(s) ran eagerly (RuntimeError: ...)", replays=0,
                          differences={"loss_G": 0.0})
    ok, detail = comparison_verdict(fallback, 1e-3)  # type: ignore[arg-type]
    assert not ok and detail.startswith("the graph was not used: the capture failed")
    assert not comparison_verdict(comparison(replays=4), 1e-3)[0]  # type: ignore[arg-type]
    assert not comparison_verdict(comparison(differences={"loss_G": 2e-3}), 1e-3)[0]  # type: ignore[arg-type]
    ok, detail = comparison_verdict(comparison(rates=[2e-4, 2e-4]), 1e-3)  # type: ignore[arg-type]
    assert not ok and "left the rate unchanged" in detail


def test_a_resume_passes_only_with_graphs_in_both_runs_and_from_the_checkpoint() -> None:
    from benchmarks.graph_compare import ResumeComparison, resume_verdict

    good = ResumeComparison(4, 2, 2, {"loss_G": 1e-6, "fid_train": 1e-7}, 1e-6, (True, True))
    assert resume_verdict(good, 1e-3)[0]
    for bad in (ResumeComparison(4, 2, 2, good.differences, 1e-6, (True, False)),
                ResumeComparison(4, 2, 0, good.differences, 1e-6, (True, True)),
                ResumeComparison(4, 2, 2, {"loss_G": 5e-3}, 1e-6, (True, True)),
                ResumeComparison(4, 2, 2, good.differences, 5e-3, (True, True))):
        assert not resume_verdict(bad, 1e-3)[0], bad


@pytest.mark.slow  # four step processes (torch imports): tens of seconds on a shared 2-core machine
def test_the_dry_run_of_the_quick_steps_reports_each_one(tmp_path: Path) -> None:
    """The real driver and steps, DRY_RUN=1: the CUDA-only items say skipped, never ok. The whole dry run (about
    4 minutes on 2 shared cores) is the documented manual check; its output is committed and read below."""
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path / "out"), "--steps",
                             "setup,graphs,memory"], env=env, capture_output=True, text=True, timeout=280)
    text = (tmp_path / "out" / "results.txt").read_text()
    assert result.returncode == 0, text[-3000:]
    steps = dict((m["name"], m["status"]) for m in STEP_LINE.finditer(text))
    assert steps == {"setup": "ok", "graphs": "skipped", "timing": "skipped", "profile": "skipped",
                     "memory": "skipped", "concurrent": "skipped", "estimate": "skipped"}
    graph_items = re.findall(r"^CHECK (graphs \S+ \S+|resume [^:]+|memory \S+): (\S+)", text, re.M)
    assert len(graph_items) == 9 and {status for _, status in graph_items} == {"skipped"}
    assert "CHECK inception: ok" in text and "CHECK modules: ok" in text
