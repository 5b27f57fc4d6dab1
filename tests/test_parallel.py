"""The parallel runner and the GPU-pinned experiment queue: graph logic, devices, and real DVC runs of toy DAGs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from dfgan.orchestrate import dag, devices, exp_queue, experiments, parallel, recovery, stage_scheduler, stage_worker
from dfgan.orchestrate.dag import StageGraph, parse_dag_dot, stages_to_run
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
    assert stage_worker.log_path(Path("logs"), "sub/dvc.yaml:train") == Path("logs/sub_dvc.yaml_train.log")
    assert stage_worker.log_path(Path("logs"), "train_gan@4-dfgan") == Path("logs/train_gan@4-dfgan.log")


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
    assert dag.load_durations(tmp_path) == {}
    dag.save_durations(tmp_path, {"a": 1.0, "d": 50.0})
    dag.save_durations(tmp_path, {"b": 2.0})
    durations = dag.load_durations(tmp_path)
    assert durations == {"a": 1.0, "b": 2.0, "d": 50.0}
    priority = dag.stage_priorities(graph, durations)
    assert priority["a"] == 51.0 and priority["c"] == 2.0  # c, never timed, counts as the median (2 s)
    (tmp_path / dag.DURATIONS_FILE).write_text("{broken")
    with pytest.raises(ValueError, match="durations.json"):
        dag.load_durations(tmp_path)


def test_simulated_schedule_follows_the_runner_policy() -> None:
    # a -> (b, c, d) in parallel; e independent. Durations: a 1, b 5, c 1, d 1, e 3.
    graph = parse_dag_dot('"a" -> "b";\n"a" -> "c";\n"a" -> "d";\n"e";\n')
    cost = {"a": 1.0, "b": 5.0, "c": 1.0, "d": 1.0, "e": 3.0}
    timed = dag.stage_priorities(graph, cost)
    assert dag.simulate_makespan(graph, cost.__getitem__, 1, timed) == sum(cost.values())
    assert dag.simulate_makespan(graph, cost.__getitem__, 2, timed) == 6.0  # a then b | e then c, d
    assert dag.simulate_makespan(graph, cost.__getitem__, 10, timed) == 6.0  # the critical path a -> b


def test_topological_order_and_cycles() -> None:
    graph = StageGraph(("c", "b", "a"), {"a": frozenset(), "b": frozenset({"a"}), "c": frozenset({"b"})})
    assert graph.topological_order() == ["a", "b", "c"]
    cyclic = StageGraph(("x", "y"), {"x": frozenset({"y"}), "y": frozenset({"x"})})
    with pytest.raises(ValueError, match="cycle"):
        cyclic.topological_order()


def test_detect_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    assert devices.detect_gpus("0, 2") == ["0", "2"]
    assert devices.detect_gpus("none") == []
    assert devices.detect_gpus("auto", {"CUDA_VISIBLE_DEVICES": "3,1"}) == ["3", "1"]
    assert devices.detect_gpus("auto", {"CUDA_VISIBLE_DEVICES": ""}) is None
    assert devices.detect_gpus("auto", {"CUDA_VISIBLE_DEVICES": "-1"}) is None
    monkeypatch.setattr(devices.shutil, "which", lambda _: None)
    assert devices.detect_gpus("auto", {}) is None
    with pytest.raises(ValueError, match="--gpus"):
        devices.detect_gpus(",")


def test_each_stage_sees_one_device() -> None:
    env, label = devices.stage_environment({"PATH": "/bin"}, "1")
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and label == "GPU 1" and env["PATH"] == "/bin"
    env, label = devices.stage_environment({"CUDA_VISIBLE_DEVICES": "2,3,0,1"}, None)  # a dask-cuda worker
    assert env["CUDA_VISIBLE_DEVICES"] == "2" and label == "GPU 2"
    env, label = devices.stage_environment({}, "")
    assert env["CUDA_VISIBLE_DEVICES"] == "" and label == "CPU"
    env, label = devices.stage_environment({}, None)
    assert "CUDA_VISIBLE_DEVICES" not in env and label == "CPU"


def test_parse_args_rejects_zero_workers() -> None:
    with pytest.raises(SystemExit):
        parallel.parse_args(["--workers", "0"])
    with pytest.raises(SystemExit):
        parallel.parse_args(["--per-gpu", "0"])
    with pytest.raises(SystemExit):  # a cluster's workers declare their slots themselves (--resources GPU=K)
        parallel.parse_args(["--per-gpu", "2", "--address", "tcp://head:8786"])
    args = parallel.parse_args(["-S", "gan.lambda_l1=50", "-S", "gan.seeds=[0,1]", "--name", "l1-50", "report"])
    assert args.set_params == ["gan.lambda_l1=50", "gan.seeds=[0,1]"] and args.name == "l1-50"
    assert args.targets == ["report"]


# --- several stages per GPU -----------------------------------------------------------------------------------


def test_placement_never_puts_more_than_k_on_a_device_and_fills_evenly() -> None:
    import random

    gpus = ["0", "1", "2"]
    assert devices.place_stage(gpus, 2, {}) == "0"
    assert devices.place_stage(gpus, 2, {"0": 1}) == "1"  # the least busy, not the first with room
    assert devices.place_stage(gpus, 2, {"0": 2, "1": 1, "2": 1}) == "1"  # ties: the first listed
    assert devices.place_stage(gpus, 2, {"0": 2, "1": 2, "2": 2}) is None
    with pytest.raises(ValueError, match="--per-gpu"):
        devices.place_stage(gpus, 0, {})
    rng = random.Random(0)
    for per_device in (1, 2, 4):
        running: dict[str, int] = {}
        placed: list[str] = []  # the devices of the running stages
        for _ in range(500):
            if placed and (rng.random() < 0.4 or len(placed) == per_device * len(gpus)):
                running[placed.pop(rng.randrange(len(placed)))] -= 1
                continue
            before = dict(running)
            device = devices.place_stage(gpus, per_device, running)
            assert device is not None  # a free slot exists while fewer than K x devices run
            running[device] = running.get(device, 0) + 1
            placed.append(device)
            assert max(running.values()) <= per_device
            assert running[device] - 1 == min(before.get(d, 0) for d in gpus)  # went to a least busy device
        # From empty, n stages fill the devices evenly: counts differ by at most one.
        filled: dict[str, int] = {}
        for _ in range(per_device * len(gpus)):
            device = devices.place_stage(gpus, per_device, filled)
            assert device is not None
            filled[device] = filled.get(device, 0) + 1
            assert max(filled.values()) - min(filled.get(d, 0) for d in gpus) <= 1
        assert filled == {d: per_device for d in gpus}


def test_local_slots_and_thread_shares() -> None:
    assert devices.local_slots(2, 4, None) == (4, 8)  # --per-gpu 4 on 2 GPUs: 8 workers
    assert devices.local_slots(2, None, None) == (1, 2)  # one stage per GPU, as before
    assert devices.local_slots(2, None, 3) == (2, 3)  # --workers 3: at most 2 on a GPU (the old round-robin)
    assert devices.local_slots(2, 4, 5) == (4, 5)
    with pytest.raises(ValueError, match="more than --per-gpu 4 x 2"):
        devices.local_slots(2, 4, 9)
    assert devices.thread_share(16, 8) == 2 and devices.thread_share(2, 8) == 1 and devices.thread_share(7, 2) == 3

    def placement(*argv: str, gpus: list[str] | None, cpus: int) -> tuple[int, devices.Placement]:
        return parallel.local_placement(parallel.parse_args(list(argv)), gpus, cpus)

    workers, place = placement("--per-gpu", "4", gpus=["0", "1"], cpus=16)
    assert workers == 8 and place.gpus == ("0", "1") and place.per_gpu == 4 and place.threads == 2
    workers, place = placement(gpus=None, cpus=16)  # no GPU: one worker per core, one thread each
    assert workers == 16 and place.gpus == () and place.threads == 1 and not place.hide_gpus
    workers, place = placement("--workers", "2", "--per-gpu", "4", gpus=[], cpus=16)  # --gpus none
    assert workers == 2 and place.hide_gpus and place.threads == 8  # --per-gpu has no effect on the CPU
    workers, place = placement("--per-gpu", "2", "--threads-per-stage", "3", gpus=["0"], cpus=16)
    assert workers == 2 and place.threads == 3 and place.force_threads


def test_stage_environment_gets_the_thread_share_unless_omp_is_set() -> None:
    env, label = devices.stage_environment({}, "1", threads=4)
    assert {name: env[name] for name in devices.THREAD_VARIABLES} == dict.fromkeys(devices.THREAD_VARIABLES, "4")
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and label == "GPU 1, 4 thread(s)"
    env, label = devices.stage_environment({"OMP_NUM_THREADS": "6"}, "", threads=4)  # the user's choice wins
    assert env["OMP_NUM_THREADS"] == "6" and "MKL_NUM_THREADS" not in env and label == "CPU, 6 thread(s)"
    env, _ = devices.stage_environment({"OMP_NUM_THREADS": "6"}, "", threads=4, force_threads=True)
    assert env["OMP_NUM_THREADS"] == "4" and env["OPENBLAS_NUM_THREADS"] == "4"


def test_cluster_resource_arithmetic() -> None:
    # Host a: two dask-cuda workers offering GPU=4 slots with 4 threads each, 32 cores -> 8 stages, 4 threads each.
    # Host b: one worker with GPU=2 but a single thread (so 1 stage at a time), and one without a GPU (no stages).
    workers = {
        "tcp://a:1": {"host": "a", "nthreads": 4, "resources": {"GPU": 4}},
        "tcp://a:2": {"host": "a", "nthreads": 4, "resources": {"GPU": 4}},
        "tcp://b:1": {"host": "b", "nthreads": 1, "resources": {"GPU": 2}},
        "tcp://b:2": {"host": "b", "nthreads": 8, "resources": {}},
    }
    cpus = {"tcp://a:1": 32, "tcp://a:2": 32, "tcp://b:1": 8, "tcp://b:2": 8}
    assert devices.cluster_thread_shares(workers, cpus) == {"tcp://a:1": 4, "tcp://a:2": 4, "tcp://b:1": 8,
                                                             "tcp://b:2": 8}
    # Without GPU resources every worker thread runs a stage: host b then runs 9 at once on 8 cores.
    cpu_only = {address: {**info, "resources": {}} for address, info in workers.items()}
    assert devices.cluster_thread_shares(cpu_only, cpus) == {"tcp://a:1": 4, "tcp://a:2": 4, "tcp://b:1": 1,
                                                              "tcp://b:2": 1}


def test_queue_workers_per_gpu() -> None:
    assert exp_queue.worker_devices(["0", "1"], 2) == ["0", "1", "0", "1"]
    assert exp_queue.worker_devices(["0,1"], 3) == ["0,1", "0,1", "0,1"]
    with pytest.raises(ValueError, match="--per-gpu"):
        exp_queue.worker_devices(["0"], 0)


# --- -S as `dvc exp run -S` applies it ------------------------------------------------------------------------


def params_repo(root: Path) -> Path:
    root.mkdir()
    shutil.copy2(PROJECT_ROOT / "params.yaml", root / "params.yaml")
    return root


def test_set_params_applies_overrides_as_dvc_exp_run_does(tmp_path: Path) -> None:
    from dvc.utils.hydra import apply_overrides

    repo = params_repo(tmp_path / "repo")
    (repo / "extra.yaml").write_text("a:\n  b: 1\n")
    before = (repo / "params.yaml").read_bytes()
    overrides = ["gan.lambda_l1=50", "gan.seeds=[0,1]", "extra.yaml:a.b=2"]
    originals = experiments.set_params(repo, overrides)
    assert originals == {repo / "params.yaml": before, repo / "extra.yaml": b"a:\n  b: 1\n"}
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["gan"]["lambda_l1"] == 50 and params["gan"]["seeds"] == [0, 1]
    assert yaml.safe_load((repo / "extra.yaml").read_text()) == {"a": {"b": 2}}
    reference = params_repo(tmp_path / "reference") / "params.yaml"  # what `dvc exp run -S` writes, byte for byte
    apply_overrides(reference, overrides[:2])
    assert (repo / "params.yaml").read_bytes() == reference.read_bytes()
    experiments.restore_files(originals)
    assert (repo / "params.yaml").read_bytes() == before


@pytest.mark.parametrize(("override", "message"), [
    ("gan.lamda_l1=50", "-S gan.lamda_l1=50: params.yaml: gan.lamda_l1: unknown key; did you mean gan.lambda_l1?"),
    ("gan.lambda_l1=abc", "-S gan.lambda_l1=abc: params.yaml: gan.lambda_l1: must be a number"),
    ("gan.lambda_l1=[1", "-S gan.lambda_l1=[1: params.yaml: no viable alternative at input '[1'"),
    ("nothere.yaml:a=1", "-S nothere.yaml:a=1: nothere.yaml: params file not found"),
    ("gan.lambda_l1=50,200", "-S gan.lambda_l1=50,200: a sweep is one experiment per value"),
])
def test_a_bad_override_fails_with_one_line_and_changes_nothing(tmp_path: Path, override: str, message: str) -> None:
    from dfgan.core.errors import InputError

    repo = params_repo(tmp_path / "repo")
    before = (repo / "params.yaml").read_bytes()
    with pytest.raises(InputError) as caught:
        experiments.set_params(repo, ["gan.lambda_l1=50", override])
    assert len(caught.value.lines()) == 1 and caught.value.lines()[0].startswith(message), caught.value.lines()
    assert (repo / "params.yaml").read_bytes() == before


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
    return subprocess.run([sys.executable, "-m", "dfgan.orchestrate.parallel", "--repo", str(repo), *args], env=env, text=True,
                          capture_output=True, timeout=300)


def locked_stages(repo: Path) -> set[str]:
    lock = repo / "dvc.lock"
    return set(yaml.safe_load(lock.read_text())["stages"]) if lock.exists() else set()


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
    proc = subprocess.Popen([sys.executable, "-m", "dfgan.orchestrate.parallel", "--repo", str(repo), "--workers", "2"],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not (repo / "slow.pid").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the slow stage never started"
        time.sleep(0.2)
    stage_pid = int((repo / "slow.pid").read_text())
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=180)  # a loaded machine can be slow to shut the Dask cluster down
    assert proc.returncode == stage_worker.EXIT_INTERRUPTED, output
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


# What a stage stopped while DVC rewrites .dvc/tmp/rwlock leaves (DVC empties the file, then writes it).
HALF_WRITTEN_RWLOCK = '{"write": {"out.txt": {"pid": 12'


def test_a_half_written_rwlock_is_set_aside_and_a_readable_one_kept(tmp_path: Path) -> None:
    repo = make_toy_repo(tmp_path / "toy", {"hello": {"cmd": WRITE.format(out="out.txt", text="hi"),
                                                      "outs": ["out.txt"]}})
    rwlock = repo / ".dvc/tmp/rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    assert recovery.set_aside_broken_rwlock(repo) is None  # absent
    rwlock.write_text('{"write": {}, "read": {}}')
    assert recovery.set_aside_broken_rwlock(repo) is None and rwlock.exists()  # readable: DVC's business
    rwlock.write_text(HALF_WRITTEN_RWLOCK)
    broken = subprocess.run(["dvc", "status"], cwd=repo, text=True, capture_output=True)
    assert broken.returncode != 0 and "RWLock-file" in broken.stdout + broken.stderr  # the hazard, with this DVC
    aside = recovery.set_aside_broken_rwlock(repo)
    assert aside is not None and aside.read_text() == HALF_WRITTEN_RWLOCK and not rwlock.exists()
    assert run(["dvc", "status"], repo).returncode == 0


@pytest.mark.slow
def test_the_runner_resumes_past_a_half_written_rwlock(tmp_path: Path) -> None:
    repo = make_toy_repo(tmp_path / "toy", {"hello": {"cmd": WRITE.format(out="out.txt", text="hi"),
                                                      "outs": ["out.txt"]}})
    (repo / ".dvc/tmp").mkdir(parents=True, exist_ok=True)
    (repo / ".dvc/tmp/rwlock").write_text(HALF_WRITTEN_RWLOCK)
    result = runner(repo, "--workers", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rwlock was unreadable" in result.stdout and "hello" in locked_stages(repo)
    assert (repo / "out.txt").read_text() == "hi"


def lock_has(repo: Path, stage: str) -> bool:
    """Whether dvc.lock has ``stage``; False while DVC is still writing the file."""
    try:
        return stage in locked_stages(repo)
    except (TypeError, yaml.YAMLError):
        return False


# The Dask scheduler drops a worker it has not heard from for max(worker-ttl, 10 heartbeats of 0.5 s) = 5 s here.
SHORT_WORKER_TTL = {"DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": "1s"}
PAUSE_S = 8.0


@pytest.mark.slow
def test_a_runner_paused_past_the_worker_ttl_exits_naming_the_finished_stages(tmp_path: Path) -> None:
    """SIGSTOP of the runner (a suspended laptop) stops its local workers' heartbeats; once it continues, the Dask
    scheduler drops them. The stage running then finishes on its own (a process of its own), but its result never
    arrives and nothing can run `after`: the runner must notice, exit in bounded time with one line naming what
    finished and how to resume, and the rerun must finish the rest."""
    stages: dict[str, dict[str, object]] = {
        "slow": {"cmd": "python -c \"import pathlib, time; pathlib.Path('slow.started').write_text(''); "
                        "time.sleep(1); pathlib.Path('s.txt').write_text('s')\"", "outs": ["s.txt"]},
        "after": {"cmd": WRITE.format(out="t.txt", text="t"), "deps": ["s.txt"], "outs": ["t.txt"]},
    }
    repo = make_toy_repo(tmp_path / "toy", stages)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **SHORT_WORKER_TTL}
    command = [sys.executable, "-m", "dfgan.orchestrate.parallel", "--repo", str(repo), "--workers", "1"]
    proc = subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not (repo / "slow.started").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the slow stage never started"
        time.sleep(0.1)
    proc.send_signal(signal.SIGSTOP)
    paused = time.monotonic()
    try:
        while not lock_has(repo, "slow"):  # the stage goes on without the runner, to its end in dvc.lock
            assert time.monotonic() < paused + 120, "the slow stage never finished"
            time.sleep(0.2)
        time.sleep(max(0.0, paused + PAUSE_S - time.monotonic()))
    finally:
        proc.send_signal(signal.SIGCONT)
    try:
        output, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"the runner still waits 90 s after it lost its worker:\n{output}")
    assert proc.returncode == stage_scheduler.EXIT_WORKERS_LOST, output
    lines = [line for line in output.splitlines() if line.startswith("stopped: lost Dask worker(s) ")]
    assert len(lines) == 1, output
    assert "finished 1 of 2 stage(s): slow; not finished: after; resume with: python -m dfgan.orchestrate.parallel " \
           f"--repo {repo} --workers 1 (finished stages are cached and skipped)" in lines[0], lines[0]
    assert locked_stages(repo) == {"slow"}

    rerun = runner(repo, "--workers", "1")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "1 of 2 stage(s) to run" in rerun.stdout  # `slow` finished and is cached
    assert locked_stages(repo) == {"slow", "after"}


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


# --- several stages per GPU and -S / --name, on toy pipelines ------------------------------------------------

# Records the device and thread share it was given and when it ran; a second is long enough for stages to overlap.
RECORD = ("python -c \"import json, os, time; start = time.time(); time.sleep(1.5); "
          "json.dump({'device': os.environ.get('CUDA_VISIBLE_DEVICES'), 'omp': os.environ.get('OMP_NUM_THREADS'), "
          "'mkl': os.environ.get('MKL_NUM_THREADS'), 'start': start, 'end': time.time()}, open('{out}', 'w'))\"")


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at one instant."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


@pytest.mark.slow
def test_per_gpu_puts_at_most_k_stages_on_each_device_with_a_thread_share(tmp_path: Path) -> None:
    names = [f"s{i}" for i in range(6)]
    stages: dict[str, dict[str, object]] = {name: {"cmd": RECORD.replace("{out}", f"{name}.json"),
                                                   "outs": [f"{name}.json"]} for name in names}
    repo = make_toy_repo(tmp_path / "toy", stages)
    env = {key: value for key, value in os.environ.items() if key not in devices.THREAD_VARIABLES}
    # Fake device ids: the test checks the placement, not a GPU.
    result = subprocess.run([sys.executable, "-m", "dfgan.orchestrate.parallel", "--repo", str(repo), "--gpus", "7,9",
                             "--per-gpu", "2"], env={**env, "PYTHONPATH": str(PROJECT_ROOT)}, text=True,
                            capture_output=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    share = devices.thread_share(devices.usable_cpus(), 4)
    assert f"4 local worker(s), GPUs 7,9, up to 2 stage(s) each; {share} CPU thread(s) per stage" in result.stdout
    records = [json.loads((repo / f"{name}.json").read_text()) for name in names]
    assert {record["device"] for record in records} == {"7", "9"}
    assert all(record["omp"] == record["mkl"] == str(share) for record in records)
    for device in ("7", "9"):
        spans = [(record["start"], record["end"]) for record in records if record["device"] == device]
        assert most_at_once(spans) <= 2, (device, spans)
    started = re.findall(r"running +s\d +on worker \d+, GPU (\d)", result.stdout)
    assert sorted(started[:4]) == ["7", "7", "9", "9"]  # the first four (all ready at once) fill both evenly


TOY_METRIC = "python -c \"import json, yaml; x = yaml.safe_load(open('toy.yaml'))['x']; json.dump({'x2': 2 * x}, open('m.json', 'w'))\""


@pytest.mark.slow
def test_set_param_and_name_save_the_run_as_an_experiment(tmp_path: Path) -> None:
    stages: dict[str, dict[str, object]] = {
        "s": {"cmd": TOY_METRIC, "params": [{"toy.yaml": ["x"]}], "metrics": [{"m.json": {"cache": False}}]},
    }
    repo = make_toy_repo(tmp_path / "toy", stages, files={"toy.yaml": "x: 1\n"})
    bad = runner(repo, "-S", "toy.yaml:x=[1", "--name", "toy-2")
    assert bad.returncode == 2 and bad.stderr.strip() == "-S toy.yaml:x=[1: toy.yaml: no viable alternative at input '[1'"
    first = runner(repo, "--workers", "1", "-S", "toy.yaml:x=2", "--name", "toy-2")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "params changed: -S toy.yaml:x=2" in first.stdout and "saved experiment 'toy-2'" in first.stdout
    assert yaml.safe_load((repo / "toy.yaml").read_text()) == {"x": 2}  # left applied, as `dvc exp run` leaves it
    shown = json.loads(run(["dvc", "exp", "show", "--json", "--no-pager"], repo).stdout)
    saved = [rev["data"] for branch in shown for exp in branch.get("experiments") or [] for rev in exp["revs"]
             if rev.get("name") == "toy-2" or exp.get("name") == "toy-2"]
    assert len(saved) == 1, shown
    assert saved[0]["params"]["toy.yaml"]["data"] == {"x": 2}
    assert saved[0]["metrics"]["m.json"]["data"] == {"x2": 4}  # m.json was untracked: saved with -I
    again = runner(repo, "--name", "toy-2")
    assert again.returncode == 2 and "already has an experiment of that name" in again.stderr
