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
    code = (f"import subprocess, time; p = subprocess.Popen(['sleep', '60']); "
            f"open({str(child)!r}, 'w').write(str(p.pid)); print('partial result', flush=True); time.sleep(60)")
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


@pytest.mark.slow  # over 5 s: outside the fast tier
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
    assert "STEP timing skipped 0.0 (past the 6 s deadline)" in text
    assert "STEP profile skipped 0.0 (not selected)" in text
    assert "ran setup" in text and "ran timing" not in text
    assert re.search(r"^steps: ok setup; fail -; timeout graphs; skipped timing profile memory concurrent estimate$",
                     text, re.M), text
    config = (tmp_path / "out" / "check.json").read_text()
    assert '"dry_run": true' in config and '"size": 32' in config


def test_the_step_limits_fit_eight_minutes_on_a_gpu_and_five_in_a_dry_run() -> None:
    assert [s.item for s in STEPS] == ["-", "a", "b", "c", "d", "e", "f"]  # the priority order
    assert sum(s.limit for s in STEPS) <= 450 and sum(s.dry_limit for s in STEPS) <= 300


def test_every_step_is_a_process_whose_module_runs_it(tmp_path: Path) -> None:
    """Each step's command names a module with a ``main`` that knows the step (no step falls through to a KeyError
    in its own process); ``concurrent`` is its own module, so gpu_check_steps need not import it back."""
    import importlib

    from benchmarks import gpu_check_steps

    for step in STEPS:
        command = gpu_check.step_command(step.name, tmp_path / "check.json")
        module = importlib.import_module(command[command.index("-m") + 1])
        assert callable(module.main), step.name
        if module is gpu_check_steps:
            assert step.name in gpu_check_steps.STEPS or step.name == "memory", step.name
        else:
            assert command[-1] == str(tmp_path / "check.json"), step.name
    assert "gpu_check_concurrent" not in (ROOT / "benchmarks/gpu_check_steps.py").read_text().split('"""', 2)[2]


@pytest.mark.parametrize("dry_run", [True, False])
def test_the_concurrent_runs_params_pass_the_params_rules(dry_run: bool, tmp_path: Path) -> None:
    """Item (e) trains with a one-size copy of the paper profile; the rules that every stage applies must accept it
    (a copy that kept the paper's primary sizes and extra seeds failed the whole item before any run)."""
    from benchmarks.gpu_check_concurrent import write_params
    from benchmarks.gpu_check_steps import CheckConfig
    from dfgan.core.params_file import load_settings

    config = CheckConfig.load(str(gpu_check.write_config(tmp_path, dry_run, None, None)))
    for epochs in (2, config.conc_epochs):
        settings = load_settings(write_params(config, tmp_path, epochs))
        assert settings.sizes == (config.conc_pool,) and set(range(max(config.ks))) <= set(settings.gan.seeds)


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

    fields = dict(steps=8, differences={"loss_G": 2e-6, "lr": 0.0}, floor={"loss_G": 0.0, "lr": 0.0}, problem=None,
                  replays=5, warmup=3, rates=[1.5e-4, 1e-4])
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
    # Where two eager runs differ already (atomics, amplified by GAN training), the limit is 10 times that.
    noisy = comparison(differences={"loss_G": 2e-2}, floor={"loss_G": 5e-3})
    ok, detail = comparison_verdict(noisy, 1e-3)  # type: ignore[arg-type]
    assert ok and "(eager vs eager: 5.0e-03; limit 5.0e-02)" in detail
    too_far = comparison(differences={"loss_G": 6e-2}, floor={"loss_G": 5e-3})
    assert not comparison_verdict(too_far, 1e-3)[0]  # type: ignore[arg-type]


def test_a_resume_passes_only_with_graphs_in_every_run_and_from_the_checkpoint() -> None:
    from benchmarks.graph_compare import ResumeComparison, resume_verdict

    close, floor = {"loss_G": 1e-6, "weights": 1e-6}, {"loss_G": 0.0, "weights": 0.0}
    assert resume_verdict(ResumeComparison(4, 2, 2, close, floor, (True, True, True)), 1e-3)[0]
    for bad in (ResumeComparison(4, 2, 2, close, floor, (True, True, False)),
                ResumeComparison(4, 2, 0, close, floor, (True, True, True)),
                ResumeComparison(4, 2, 2, {"loss_G": 5e-3, "weights": 1e-6}, floor, (True, True, True)),
                ResumeComparison(4, 2, 2, {"loss_G": 1e-6, "weights": 5e-3}, floor, (True, True, True))):
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


def tiny_gan_settings() -> object:
    from dfgan.core.params_file import load_settings
    from dfgan.core.settings import with_values

    return with_values(load_settings(ROOT / "params.yaml"), {
        "data.image_size": 32, "gan.batch_size": 4, "gan.ngf": 8, "gan.ndf": 8, "gan.n_epochs": 1,
        "gan.n_epochs_decay": 3, "gan.amp": False, "gan.device": "cpu"})


@pytest.mark.slow  # 32 GAN steps at 32 px
def test_item_a_on_an_emulated_graph_passes_and_a_failed_capture_fails(
    monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    """The graphs item's code on a CPU, with CUDA's graph calls faked (each replay reruns the step): 8 steps, the
    schedulers stepped after steps 4 and 6; then the same with a capture that raises."""
    import numpy as np
    import torch

    from benchmarks.graph_compare import captured_vs_eager_gan, comparison_verdict
    from dfgan.gan.fid import FIDLoss, feature_statistics
    from dfgan.gan.step import FidTerm
    from tests.fakes import TinyExtractor, fake_cuda_graphs

    term = FidTerm(TinyExtractor(), FIDLoss(*feature_statistics(np.random.default_rng(0).normal(size=(40, 16)))))
    cpu = torch.device("cpu")
    with monkeypatch.context() as patch:
        graphs = fake_cuda_graphs(patch, emulate=True)
        comparison = captured_vs_eager_gan(tiny_gan_settings(), "dfgan", cpu, term, 8, scheduler_after=[4, 6])
    ok, detail = comparison_verdict(comparison, 1e-3)
    assert ok, detail
    assert (comparison.replays, comparison.warmup, graphs[0].replayed) == (5, 3, 5)
    assert comparison.rates == pytest.approx([0.75 * 2e-4, 0.5 * 2e-4])
    assert set(comparison.differences) == {"loss_D", "loss_G_GAN", "loss_G_L1", "loss_G", "loss_FID", "lr"}
    # The same arithmetic eager and replayed (the sync-free FID, capturable Adam): equal to the bit on a CPU.
    assert max(comparison.differences.values()) == 0 and max(comparison.floor.values()) == 0
    with monkeypatch.context() as patch:
        fake_cuda_graphs(patch, capture_error=RuntimeError("operation not permitted when stream is capturing"))
        fallback = captured_vs_eager_gan(tiny_gan_settings(), "dfgan", cpu, term, 8, scheduler_after=[4, 6])
    ok, detail = comparison_verdict(fallback, 1e-3)
    assert not ok and fallback.replays == 0 and max(fallback.differences.values()) == 0  # equal, yet a failure
    assert detail.startswith("the graph was not used: the capture failed and 5 call(s) ran eagerly (RuntimeError")


def test_a_graph_time_is_recorded_only_when_the_graph_replayed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from benchmarks.gpu_check_steps import Report, _timed
    from dfgan.core.speed import CapturedStep
    from tests.fakes import fake_cuda_graphs

    fields = {"model": "x", "mode": "graphs", "precision": "fp32"}
    cpu, x = torch.device("cpu"), torch.ones(3)
    with monkeypatch.context() as patch:
        fake_cuda_graphs(patch)
        replayed = CapturedStep(lambda t: t * 2, "x")
        failed = CapturedStep(lambda t: t * 2, "y")
        report = Report()
        _timed(report, "timing x graphs fp32", fields, lambda: replayed(x), cpu, 4, replayed, graphs=True)
        failed.failed, failed.failure = True, "RuntimeError: capture"  # as a failed capture leaves it
        _timed(report, "timing y graphs fp32", fields, lambda: failed(x), cpu, 4, failed, graphs=True)
    out = capsys.readouterr().out.splitlines()
    assert re.match(r"^TIME model=x mode=graphs precision=fp32 steps=4 per_step_ms=\S+ median_ms=\S+ timer=wall "
                    r"replays=6$", out[0]), out  # 3 eager calls, the capture, one replay untimed; 4 timed replays
    assert out[1].startswith("CHECK timing y graphs fp32: fail (the graph was not used: the capture failed and 9 "
                             "call(s) ran eagerly (RuntimeError: capture);")
    assert report.statuses == ["ok", "fail"]


def test_the_committed_cpu_dry_run_reported_every_step_within_its_deadline() -> None:
    text = DRY_RUN_FILE.read_text()
    steps = [(m["name"], m["status"], float(m["seconds"])) for m in STEP_LINE.finditer(text)]
    assert [name for name, _, _ in steps] == [s.name for s in STEPS]
    for (name, status, seconds), step in zip(steps, STEPS):
        assert status in ("ok", "skipped") and seconds <= step.dry_limit, (name, status, seconds)
    total = float(re.search(r"^total: ([\d.]+) s \(deadline (\d+) s\)$", text, re.M)[1])  # type: ignore[index]
    assert total <= sum(s.dry_limit for s in STEPS)
    # Every CUDA-only item was skipped with its reason, none passed; the rest ran: a record per measurement.
    cuda_only = re.findall(r"^CHECK (graphs|resume|memory|timing \S+ (?:graphs|eager bf16)|concurrent \S+ MPS)"
                           r"[^:]*: (\S+) \((.*)\)$", text, re.M)
    assert cuda_only and all(status == "skipped" and reason.startswith("no CUDA") for _, status, reason in cuda_only)
    for kind in ("TIME model=pix2pix mode=eager", "TIME model=dfgan mode=eager", "TIME model=unetpp mode=eager",
                 "TIME model=inception", "TIME model=fid mode=eigvalsh", "PROFILE model=dfgan", "CONCURRENT k=1",
                 "CONCURRENT k=2", "CHECK estimate 1 per GPU: ok"):
        assert re.search(f"^{re.escape(kind)}", text, re.M), kind


def test_the_documented_step_limits_are_the_scripts() -> None:
    table = re.findall(r"^\| (\w+)(?: \((\w)\))? \| (\d+) / (\d+) s \|", (ROOT / "docs" / "gpu.md").read_text(), re.M)
    assert [(name, item or "-", int(gpu), int(dry)) for name, item, gpu, dry in table] == [
        (s.name, s.item, s.limit, s.dry_limit) for s in STEPS]
