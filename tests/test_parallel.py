"""The parallel runner and the GPU-pinned experiment queue: graph logic, devices, and real DVC runs of toy DAGs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from dfgan import exp_queue, parallel
from dfgan.parallel import StageGraph, parse_dag_dot, stages_to_run
from tests.pipeline_repo import PROJECT_ROOT, run

DOT = """strict digraph {
"a";
"b";
"c";
"d";
"e";
"a" -> "b";
"b" -> "c";
"a" -> "d";
}
"""


def test_parse_dag_dot_reads_stages_and_edges() -> None:
    graph = parse_dag_dot(DOT)
    assert graph.order == ("a", "b", "c", "d", "e")
    assert graph.parents == {"a": set(), "b": {"a"}, "c": {"b"}, "d": {"a"}, "e": set()}
    assert graph.descendants(["a"]) == {"b", "c", "d"}
    assert graph.descendants(["e"]) == set()


def test_matrix_and_nested_stage_names_parse() -> None:
    graph = parse_dag_dot('"seg_synth@4-dfgan2x-none";\n"sub/dvc.yaml:train" -> "seg_synth@4-dfgan2x-none";\n')
    assert graph.parents["seg_synth@4-dfgan2x-none"] == {"sub/dvc.yaml:train"}
    assert parallel.log_path(Path("logs"), "sub/dvc.yaml:train") == Path("logs/sub_dvc.yaml_train.log")
    assert parallel.log_path(Path("logs"), "train_gan@4-dfgan") == Path("logs/train_gan@4-dfgan.log")


def test_stages_to_run_adds_descendants_of_changed_stages_only() -> None:
    graph = parse_dag_dot(DOT)
    plan = stages_to_run(graph, {"b", "not-in-graph"})
    assert plan.order == ("b", "c")
    assert plan.parents == {"b": set(), "c": {"b"}}  # a is up to date: not waited for
    assert stages_to_run(graph, set()).order == ()


def test_critical_path_starts_the_longest_chain_first() -> None:
    graph = parse_dag_dot(DOT)
    assert graph.critical_path() == {"a": 3, "b": 2, "c": 1, "d": 1, "e": 1}
    weighted = graph.critical_path(lambda name: 10.0 if name == "d" else 1.0)
    assert weighted["a"] == 11.0


def test_durations_of_earlier_runs_set_the_priorities(tmp_path: Path) -> None:
    graph = parse_dag_dot(DOT)
    assert parallel.load_durations(tmp_path) == {}
    parallel.save_durations(tmp_path, {"a": 1.0, "d": 50.0})
    parallel.save_durations(tmp_path, {"b": 2.0})
    durations = parallel.load_durations(tmp_path)
    assert durations == {"a": 1.0, "b": 2.0, "d": 50.0}
    priority = parallel.stage_priorities(graph, durations)
    assert priority["a"] == 51.0 and priority["c"] == 2.0  # c, never timed, counts as the median (2 s)
    (tmp_path / parallel.DURATIONS_FILE).write_text("{broken")
    with pytest.raises(ValueError, match="durations.json"):
        parallel.load_durations(tmp_path)


def test_simulated_schedule_follows_the_runner_policy() -> None:
    # a -> (b, c, d) in parallel; e independent. Durations: a 1, b 5, c 1, d 1, e 3.
    graph = parse_dag_dot('"a" -> "b";\n"a" -> "c";\n"a" -> "d";\n"e";\n')
    cost = {"a": 1.0, "b": 5.0, "c": 1.0, "d": 1.0, "e": 3.0}
    timed = parallel.stage_priorities(graph, cost)
    assert parallel.simulate_makespan(graph, cost.__getitem__, 1, timed) == sum(cost.values())
    assert parallel.simulate_makespan(graph, cost.__getitem__, 2, timed) == 6.0  # a then b | e then c, d
    assert parallel.simulate_makespan(graph, cost.__getitem__, 10, timed) == 6.0  # the critical path a -> b


def test_topological_order_and_cycles() -> None:
    graph = StageGraph(("c", "b", "a"), {"a": frozenset(), "b": frozenset({"a"}), "c": frozenset({"b"})})
    assert graph.topological_order() == ["a", "b", "c"]
    cyclic = StageGraph(("x", "y"), {"x": frozenset({"y"}), "y": frozenset({"x"})})
    with pytest.raises(ValueError, match="cycle"):
        cyclic.topological_order()


def test_detect_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parallel.detect_gpus("0, 2") == ["0", "2"]
    assert parallel.detect_gpus("none") == []
    assert parallel.detect_gpus("auto", {"CUDA_VISIBLE_DEVICES": "3,1"}) == ["3", "1"]
    assert parallel.detect_gpus("auto", {"CUDA_VISIBLE_DEVICES": ""}) is None
    assert parallel.detect_gpus("auto", {"CUDA_VISIBLE_DEVICES": "-1"}) is None
    monkeypatch.setattr(parallel.shutil, "which", lambda _: None)
    assert parallel.detect_gpus("auto", {}) is None
    with pytest.raises(ValueError, match="--gpus"):
        parallel.detect_gpus(",")


def test_each_stage_sees_one_device() -> None:
    assert parallel.worker_devices(3, ["0", "1"]) == {"0": "0", "1": "1", "2": "0"}
    assert parallel.worker_devices(2, []) == {"0": "", "1": ""}
    assert parallel.worker_devices(2, None) == {}
    env, label = parallel.stage_environment({"PATH": "/bin"}, "1")
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and label == "GPU 1" and env["PATH"] == "/bin"
    env, label = parallel.stage_environment({"CUDA_VISIBLE_DEVICES": "2,3,0,1"}, None)  # a dask-cuda worker
    assert env["CUDA_VISIBLE_DEVICES"] == "2" and label == "GPU 2"
    env, label = parallel.stage_environment({}, "")
    assert env["CUDA_VISIBLE_DEVICES"] == "" and label == "CPU"
    env, label = parallel.stage_environment({}, None)
    assert "CUDA_VISIBLE_DEVICES" not in env and label == "CPU"


def test_parse_args_rejects_zero_workers() -> None:
    with pytest.raises(SystemExit):
        parallel.parse_args(["--workers", "0"])


def test_queue_device_groups_and_status() -> None:
    assert exp_queue.device_groups(["0", "1", "2", "3", "4"], 2) == ["0,1", "2,3"]
    assert exp_queue.device_groups(["0", "1"], 1) == ["0", "1"]
    with pytest.raises(ValueError):
        exp_queue.device_groups(["0"], 2)
    assert exp_queue.queue_worker_count("No experiment tasks in the queue.\n\nWorker status: 1 active, 2 idle") == 3
    with pytest.raises(ValueError, match="Worker status"):
        exp_queue.queue_worker_count("nothing")


# --- real DVC runs of toy pipelines (seconds each) ------------------------------------------------------------

WRITE = "python -c \"open('{out}','w').write('{text}')\""


def make_toy_repo(root: Path, stages: dict[str, dict[str, object]], files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True)
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (root / ".gitignore").write_text("/logs/\n")
    run(["git", "init", "-q"], root)
    run(["git", "config", "user.email", "tests@example.invalid"], root)
    run(["git", "config", "user.name", "tests"], root)
    run(["dvc", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-q", "-m", "toy"], root)
    return root


def runner(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([sys.executable, "-m", "dfgan.parallel", "--repo", str(repo), *args], env=env, text=True,
                          capture_output=True, timeout=300)


def locked_stages(repo: Path) -> set[str]:
    lock = repo / "dvc.lock"
    return set(yaml.safe_load(lock.read_text())["stages"]) if lock.exists() else set()


@pytest.mark.e2e
@pytest.mark.slow
def test_failed_stage_stops_its_descendants_only_and_a_rerun_resumes(tmp_path: Path) -> None:
    stages: dict[str, dict[str, object]] = {
        "a": {"cmd": WRITE.format(out="a.txt", text="a"), "outs": ["a.txt"]},
        "b": {"cmd": "python -c \"import sys; print('b breaks'); sys.exit(3)\"", "deps": ["a.txt"], "outs": ["b.txt"]},
        "c": {"cmd": WRITE.format(out="c.txt", text="c"), "deps": ["b.txt"], "outs": ["c.txt"]},
        "d": {"cmd": WRITE.format(out="d.txt", text="d"), "deps": ["a.txt"], "outs": ["d.txt"]},
        "e": {"cmd": WRITE.format(out="e.txt", text="e"), "outs": ["e.txt"]},
    }
    repo = make_toy_repo(tmp_path / "toy", stages)
    assert runner(repo, "--dry-run", "c").stdout.split() == ["a", "b", "c"]
    first = runner(repo, "--workers", "2")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "FAILED: stage 'b' (exit 255); see logs/b.log" in first.stderr
    assert "skipped  c  needs b, which failed" in first.stdout
    assert "b breaks" in (repo / "logs/b.log").read_text()
    assert locked_stages(repo) == {"a", "d", "e"}
    assert not (repo / "c.txt").exists() and not (repo / "logs/c.log").exists()

    stages["b"]["cmd"] = WRITE.format(out="b.txt", text="b")
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    second = runner(repo, "--workers", "2")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "2 of 5 stage(s) to run" in second.stdout  # b and c; a, d, e are cached
    assert locked_stages(repo) == {"a", "b", "c", "d", "e"}
    assert "up to date" in run(["dvc", "status"], repo).stdout
    assert "nothing to do: all 5 stage(s) are up to date" in runner(repo).stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_ctrl_c_stops_running_stages_cleanly_and_a_rerun_completes(tmp_path: Path) -> None:
    # `slow` records its pid, then waits while the file `hold` exists (at most a minute).
    slow = ("python -c \"import os, pathlib, time; pathlib.Path('slow.pid').write_text(str(os.getpid())); "
            "[time.sleep(0.2) for _ in range(300) if pathlib.Path('hold').exists()]; "
            "pathlib.Path('s.txt').write_text('s')\"")
    stages: dict[str, dict[str, object]] = {
        "slow": {"cmd": slow, "outs": ["s.txt"]},
        "after": {"cmd": WRITE.format(out="t.txt", text="t"), "deps": ["s.txt"], "outs": ["t.txt"]},
        "quick": {"cmd": WRITE.format(out="q.txt", text="q"), "outs": ["q.txt"]},
    }
    repo = make_toy_repo(tmp_path / "toy", stages)
    (repo / "hold").write_text("")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "dfgan.parallel", "--repo", str(repo), "--workers", "2"],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not (repo / "slow.pid").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the slow stage never started"
        time.sleep(0.2)
    stage_pid = int((repo / "slow.pid").read_text())
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=180)  # a loaded machine can be slow to shut the Dask cluster down
    assert proc.returncode == parallel.EXIT_INTERRUPTED, output
    assert "interrupted" in output and "stopped  slow" in output
    assert not psutil.pid_exists(stage_pid) or psutil.Process(stage_pid).status() == psutil.STATUS_ZOMBIE
    rwlock = json.loads((repo / ".dvc/tmp/rwlock").read_text())
    assert not rwlock.get("write") and not any(rwlock.get("read", {}).values())  # no DVC lock left held
    assert "slow" not in locked_stages(repo)

    (repo / "hold").unlink()
    rerun = runner(repo, "--workers", "2")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert locked_stages(repo) == {"slow", "after", "quick"}
    assert "up to date" in run(["dvc", "status"], repo).stdout


QUEUE_STAGE = """import json, os, pathlib, time
import yaml
x = yaml.safe_load(open("params.yaml"))["x"]
# A barrier between the experiments (outside their temporary workspaces): each waits until both have started.
barrier = pathlib.Path(BARRIER)
(barrier / f"started-{x}").write_text("")
deadline = time.time() + 180
while len(list(barrier.glob("started-*"))) < 2 and time.time() < deadline:
    time.sleep(0.2)
json.dump({"x2": 2 * x, "device": os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
           "both_started": len(list(barrier.glob("started-*"))) == 2}, open("m.json", "w"))
"""


@pytest.mark.e2e
@pytest.mark.slow
def test_queued_experiments_run_concurrently_each_on_its_own_device(tmp_path: Path) -> None:
    stages: dict[str, dict[str, object]] = {
        "s": {"cmd": "python s.py", "deps": ["s.py"], "params": ["x"], "metrics": [{"m.json": {"cache": False}}]},
    }
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    script = QUEUE_STAGE.replace("BARRIER", repr(str(barrier)))
    repo = make_toy_repo(tmp_path / "toy", stages, files={"s.py": script, "params.yaml": "x: 1\n"})
    for x in (2, 3):
        run(["dvc", "exp", "run", "--queue", "-S", f"x={x}"], repo)
    try:
        # Fake device ids: the test checks the pinning, not a GPU.
        assert exp_queue.main(["--repo", str(repo), "--gpus", "7,9"]) == 0
        deadline = time.monotonic() + 300
        while True:
            status = run(["dvc", "queue", "status"], repo).stdout
            if status.count("Success") == 2:
                break
            assert "Failed" not in status and time.monotonic() < deadline, status
            time.sleep(1)
    finally:
        run(["dvc", "queue", "stop", "--kill"], repo, check=False)
    shown = json.loads(run(["dvc", "exp", "show", "--json", "--no-pager"], repo).stdout)
    results = {
        rev["data"]["metrics"]["m.json"]["data"]["x2"]: rev["data"]["metrics"]["m.json"]["data"]
        for branch in shown for exp in branch.get("experiments") or [] for rev in exp["revs"]
    }
    assert set(results) == {4, 6}
    assert sorted(result["device"] for result in results.values()) == ["7", "9"]  # one device each, never both
    assert all(result["both_started"] for result in results.values()), "the experiments did not run at once"
