"""Run the DVC pipeline's independent stages concurrently on a Dask cluster, one GPU per stage where GPUs exist.

DVC stays in charge of caching, the lock file and experiments: the stage graph comes from ``dvc dag --dot``, what
needs running from ``dvc status --json``, and every stage runs as ``dvc --wait-for-lock repro -s <stage>`` (separate
``repro -s`` processes of independent stages may run at once; the flag makes each wait for the repository lock that
each holds briefly, instead of failing). This module only decides *when* and *where*:

    python -m dfgan.parallel                                # local: one worker per GPU, or per CPU core
    python -m dfgan.parallel --workers 2 --gpus none report # the ancestors of `report`, on 2 CPU workers
    python -m dfgan.parallel --address tcp://head:8786      # an existing Dask cluster (shared filesystem)

Each stage's output goes to ``logs/<stage>.log``; a failed stage stops its descendants only, the other branches
finish, and the exit status is non-zero with the failed stages and their logs named. Ctrl-C (or SIGTERM) interrupts
the running stages the way a Ctrl-C in ``dvc repro`` would, so no DVC lock is left held, and rerunning resumes.
Stages with the longest chain of work behind them start first; the chain is counted in seconds once
``logs/durations.json`` holds the stages' earlier run times (the runner keeps it up to date), in stages before.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENT_TOPIC = "dfgan-parallel"
# Exit status of a run stopped by Ctrl-C, as a shell reports a process killed by SIGINT.
EXIT_INTERRUPTED = 130
# How long a stage gets to stop after its SIGINT (DVC releases its locks), then after SIGTERM, before SIGKILL.
INTERRUPT_GRACE_S = 30.0
TERMINATE_GRACE_S = 10.0
POLL_S = 0.5

_NODE = re.compile(r'^\s*"(?P<name>[^"]+)"\s*;\s*$')
_EDGE = re.compile(r'^\s*"(?P<src>[^"]+)"\s*->\s*"(?P<dst>[^"]+)"\s*;\s*$')


class DvcCommandError(RuntimeError):
    """A DVC command the runner needs (dag, status) failed; the message carries its output."""


@dataclass(frozen=True)
class StageGraph:
    """Stages in DVC's order and, for each, the stages whose outputs it reads (its parents)."""

    order: tuple[str, ...]
    parents: Mapping[str, frozenset[str]]

    def children(self) -> dict[str, set[str]]:
        kids: dict[str, set[str]] = {name: set() for name in self.order}
        for name, ups in self.parents.items():
            for up in ups:
                kids[up].add(name)
        return kids

    def descendants(self, names: Iterable[str]) -> set[str]:
        """Every stage downstream of ``names`` (not including them unless one is downstream of another)."""
        kids = self.children()
        found: set[str] = set()
        todo = [kid for name in names for kid in kids[name]]
        while todo:
            name = todo.pop()
            if name not in found:
                found.add(name)
                todo.extend(kids[name])
        return found

    def restricted_to(self, keep: Iterable[str]) -> StageGraph:
        """The subgraph of ``keep``: an edge from a stage outside it is already satisfied."""
        kept = set(keep)
        return StageGraph(
            order=tuple(name for name in self.order if name in kept),
            parents={name: frozenset(self.parents[name] & kept) for name in self.order if name in kept},
        )

    def critical_path(self, cost: Callable[[str], float] = lambda _: 1.0) -> dict[str, float]:
        """For each stage, the cost of the longest chain from it to the end of the graph, itself included.

        Starting the stage with the longest remaining chain first is the classic list-scheduling priority; with
        unit costs it is the number of stages on that chain.
        """
        kids = self.children()
        remaining: dict[str, float] = {}
        for name in reversed(self.topological_order()):
            remaining[name] = cost(name) + max((remaining[kid] for kid in kids[name]), default=0.0)
        return remaining

    def topological_order(self) -> list[str]:
        """DVC's order, made topological (parents first) should a target list have mixed it up."""
        placed: set[str] = set()
        ordered: list[str] = []
        pending = list(self.order)
        while pending:
            ready = [name for name in pending if self.parents[name] <= placed]
            if not ready:
                raise ValueError(f"the stage graph has a cycle among: {', '.join(sorted(pending))}")
            ordered.extend(ready)
            placed.update(ready)
            pending = [name for name in pending if name not in placed]
        return ordered


def parse_dag_dot(text: str) -> StageGraph:
    """The graph printed by ``dvc dag --dot``: ``"a";`` declares a stage, ``"a" -> "b";`` says b reads a's output."""
    order: list[str] = []
    parents: dict[str, set[str]] = {}

    def add(name: str) -> None:
        if name not in parents:
            order.append(name)
            parents[name] = set()

    for line in text.splitlines():
        if edge := _EDGE.match(line):
            add(edge["src"])
            add(edge["dst"])
            parents[edge["dst"]].add(edge["src"])
        elif node := _NODE.match(line):
            add(node["name"])
    return StageGraph(tuple(order), {name: frozenset(ups) for name, ups in parents.items()})


def merge_graphs(graphs: Iterable[StageGraph]) -> StageGraph:
    order: list[str] = []
    parents: dict[str, set[str]] = {}
    for graph in graphs:
        for name in graph.order:
            if name not in parents:
                order.append(name)
                parents[name] = set()
            parents[name] |= graph.parents[name]
    return StageGraph(tuple(order), {name: frozenset(ups) for name, ups in parents.items()})


def dvc_command(*args: str) -> list[str]:
    """``dvc --wait-for-lock ARGS`` with this interpreter's DVC, so a worker uses the environment it runs in."""
    return [sys.executable, "-m", "dvc", "--wait-for-lock", *args]


def run_dvc(repo: Path, *args: str) -> str:
    result = subprocess.run(dvc_command(*args), cwd=repo, text=True, capture_output=True)
    if result.returncode != 0:
        raise DvcCommandError(
            f"`dvc {' '.join(args)}` failed in {repo} (exit {result.returncode}):\n{result.stderr or result.stdout}"
        )
    return result.stdout


def read_stage_graph(repo: Path, targets: Sequence[str] = ()) -> StageGraph:
    """The whole pipeline, or the targets with everything upstream of them, as ``dvc dag`` reports it."""
    if not targets:
        return parse_dag_dot(run_dvc(repo, "dag", "--dot"))
    return merge_graphs(parse_dag_dot(run_dvc(repo, "dag", "--dot", target)) for target in targets)


def changed_stages(repo: Path) -> set[str]:
    """Stages that ``dvc status`` reports as changed (deps, params, outs, command or no lock entry yet)."""
    text = run_dvc(repo, "status", "--json").strip()
    status = json.loads(text) if text else {}
    if not isinstance(status, dict):
        raise DvcCommandError(f"`dvc status --json` printed {type(status).__name__}, expected an object: {text!r}")
    return set(status)


def stages_to_run(graph: StageGraph, changed: Iterable[str]) -> StageGraph:
    """Changed stages and everything downstream of them (their inputs are about to change)."""
    changed_here = set(changed) & set(graph.order)
    return graph.restricted_to(changed_here | graph.descendants(changed_here))


# --- devices -------------------------------------------------------------------------------------------------


def detect_gpus(spec: str, environ: Mapping[str, str] | None = None) -> list[str] | None:
    """GPU ids for the local workers: ``auto`` (CUDA_VISIBLE_DEVICES if set, else ``nvidia-smi -L``), ``none``,
    or a comma-separated list. ``None`` means "no GPUs, leave the environment alone"; ``[]`` means "hide them"."""
    environ = os.environ if environ is None else environ
    if spec == "none":
        return []
    if spec != "auto":
        ids = [part.strip() for part in spec.split(",") if part.strip()]
        if not ids:
            raise ValueError(f"--gpus: expected auto, none or ids like 0,1,2; got {spec!r}")
        return ids
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [part.strip() for part in visible.split(",") if part.strip() and part.strip() != "-1"]
        return ids or None
    if shutil.which("nvidia-smi") is None:
        return None
    listing = subprocess.run(["nvidia-smi", "-L"], text=True, capture_output=True)
    ids = [str(i) for i, line in enumerate(listing.stdout.splitlines()) if line.startswith("GPU ")]
    return ids or None


def worker_devices(n_workers: int, gpus: list[str] | None) -> dict[str, str]:
    """Local worker name -> the CUDA_VISIBLE_DEVICES its stages get; round-robin if workers outnumber GPUs."""
    if gpus is None:
        return {}
    return {str(i): (gpus[i % len(gpus)] if gpus else "") for i in range(n_workers)}


def stage_environment(environ: Mapping[str, str], assigned: str | None) -> tuple[dict[str, str], str]:
    """The environment a stage runs in and a label of its device.

    ``assigned`` comes from the local worker table; a worker of an external cluster has none and passes on its own
    CUDA_VISIBLE_DEVICES, cut to its first id (dask-cuda lists the worker's GPU first, then the others), so that a
    stage sees only one device.
    """
    env = dict(environ)
    env["PYTHONUNBUFFERED"] = "1"
    device = assigned if assigned is not None else env.get("CUDA_VISIBLE_DEVICES")
    if device is not None:
        device = device.split(",")[0].strip()
        env["CUDA_VISIBLE_DEVICES"] = device
    label = f"GPU {device}" if device else "CPU"
    return env, label


# --- scheduling order ---------------------------------------------------------------------------------------

DURATIONS_FILE = "durations.json"


def load_durations(log_dir: Path) -> dict[str, float]:
    """Seconds each stage took when it last ran (``logs/durations.json``); empty before the first run."""
    path = log_dir / DURATIONS_FILE
    if not path.exists():
        return {}
    try:
        loaded = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); delete it to start afresh") from error
    return {str(name): float(seconds) for name, seconds in loaded.items()}


def save_durations(log_dir: Path, measured: Mapping[str, float]) -> None:
    if not measured:
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    merged = {**load_durations(log_dir), **measured}
    (log_dir / DURATIONS_FILE).write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")


def stage_priorities(graph: StageGraph, durations: Mapping[str, float]) -> dict[str, float]:
    """Longest remaining chain per stage, in seconds where a stage's duration is known (a stage never timed counts
    as the median known duration); in stages when nothing is known yet."""
    if not durations:
        return graph.critical_path()
    typical = sorted(durations.values())[len(durations) // 2]
    return graph.critical_path(lambda name: durations.get(name, typical))


def simulate_makespan(graph: StageGraph, duration: Callable[[str], float], workers: int,
                      priority: Mapping[str, float]) -> float:
    """Wall time of the runner's policy on ``workers`` identical devices: submit a stage when its parents are done,
    start the highest-priority ready stage (ties: first submitted) whenever a device is free."""
    kids = graph.children()
    waiting_on = {name: set(graph.parents[name]) for name in graph.order}
    ready: list[tuple[float, int, str]] = []
    submitted = 0

    def submit(name: str) -> None:
        nonlocal submitted
        ready.append((-priority[name], submitted, name))
        submitted += 1

    for name in graph.order:
        if not waiting_on[name]:
            submit(name)
    running: list[tuple[float, str]] = []  # (finish time, stage)
    now = 0.0
    while ready or running:
        ready.sort()
        while ready and len(running) < workers:
            _, _, name = ready.pop(0)
            running.append((now + duration(name), name))
        running.sort()
        now, name = running.pop(0)
        for kid in sorted(kids[name], key=graph.order.index):
            waiting_on[kid].discard(name)
            if not waiting_on[kid]:
                submit(kid)
    return now


# --- one stage, on a worker ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageOutcome:
    stage: str
    returncode: int
    seconds: float
    worker: str
    device: str
    log: str
    cancelled: bool = False
    ran: bool = True  # False when DVC found the stage unchanged and skipped it


def log_path(log_dir: Path, stage: str) -> Path:
    """``logs/<stage>.log``; a stage of a nested dvc.yaml (``sub/dvc.yaml:name``) gets a flat file name."""
    return log_dir / (re.sub(r"[/:\\]", "_", stage) + ".log")


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def interrupt_stage(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the stage's whole process group, as Ctrl-C in a terminal would: DVC ignores SIGINT while its
    command runs, so the command must get it too. Escalate only if it does not stop."""
    for sig, grace in ((signal.SIGINT, INTERRUPT_GRACE_S), (signal.SIGTERM, TERMINATE_GRACE_S)):
        _signal_group(proc, sig)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue
    _signal_group(proc, signal.SIGKILL)
    proc.wait()


def run_stage(stage: str, repo: str, log_dir: str, cancel_name: str, devices: Mapping[str, str]) -> StageOutcome:
    """Run ``dvc repro -s stage`` on this Dask worker, streaming its output to the stage's log."""
    from distributed import Event, get_worker

    worker = get_worker()
    worker_name = str(worker.name)
    cancel = Event(cancel_name)
    env, device = stage_environment(os.environ, devices.get(worker_name))
    log = log_path(Path(log_dir), stage)
    shown_log = os.path.relpath(log, repo) if log.is_relative_to(repo) else str(log)
    if cancel.is_set():
        return StageOutcome(stage, EXIT_INTERRUPTED, 0.0, worker_name, device, shown_log, cancelled=True, ran=False)
    worker.log_event(EVENT_TOPIC, {"stage": stage, "worker_name": worker_name, "device": device})
    log.parent.mkdir(parents=True, exist_ok=True)
    command = dvc_command("repro", "-s", stage)
    started = time.monotonic()
    cancelled = False
    with log.open("wb") as out:
        out.write(f"# dvc {' '.join(command[3:])}  (worker {worker_name}, {device}, {time.ctime()})\n".encode())
        out.flush()
        # Its own session: a Ctrl-C in the runner's terminal reaches the runner only, which then stops the stage.
        proc = subprocess.Popen(command, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            while proc.poll() is None:
                if cancel.wait(POLL_S):
                    cancelled = True
                    interrupt_stage(proc)
        finally:
            if proc.poll() is None:
                interrupt_stage(proc)
    seconds = time.monotonic() - started
    ran = "Running stage '" in log.read_text(errors="replace")
    return StageOutcome(stage, int(proc.returncode), seconds, worker_name, device, shown_log, cancelled, ran)


# --- the scheduler loop, on the client -----------------------------------------------------------------------


@dataclass
class RunSummary:
    done: list[str] = field(default_factory=list)
    failed: list[StageOutcome] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)  # stage -> the failed ancestor that stopped it
    cancelled: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return 1 if self.failed else 0


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM: the clean cancellation of the running stages."""


class _StopRequest:
    """Signal handler that only records the request; the scheduling loop checks it every ``POLL_S``.

    A handler that raises (or Python's default KeyboardInterrupt) can fire inside Dask's client code, which may
    swallow the exception: under load a Ctrl-C was then lost and the run went on to the end."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.signal_name = signal.Signals(signum).name

    def check(self) -> None:
        if self.signal_name is not None:
            raise _Interrupted(self.signal_name)


def run_graph(client: Any, graph: StageGraph, repo: Path, log_dir: Path, devices: Mapping[str, str],
              say: Callable[[str], None] = print) -> RunSummary:
    """Submit each stage once its parents are done, highest critical path first; one progress line per event."""
    from distributed import Event

    total = len(graph.order)
    kids = graph.children()
    waiting_on = {name: set(graph.parents[name]) for name in graph.order}
    durations = load_durations(log_dir)
    priority = stage_priorities(graph, durations)
    measured: dict[str, float] = {}
    gpu_cluster = any("GPU" in (info.get("resources") or {}) for info in client.scheduler_info()["workers"].values())
    resources = {"GPU": 1} if gpu_cluster else None
    cancel_name = f"{EVENT_TOPIC}-cancel-{os.getpid()}-{time.time_ns()}"
    cancel = Event(cancel_name, client=client)
    started: queue.Queue[dict[str, str]] = queue.Queue()
    client.subscribe_topic(EVENT_TOPIC, lambda event: started.put(event[1]))
    summary = RunSummary()
    futures: dict[Any, str] = {}
    running: set[str] = set()
    width = len(str(total))

    def line(state: str, stage: str, detail: str = "") -> None:
        finished = len(summary.done) + len(summary.failed) + len(summary.blocked)
        say(f"[{finished:>{width}}/{total}] {state:<8} {stage}{'  ' + detail if detail else ''}")

    def submit(stage: str) -> None:
        future = client.submit(run_stage, stage, str(repo), str(log_dir), cancel_name, dict(devices),
                               key=f"dvc-repro-{stage}-{time.time_ns()}", pure=False, retries=0,
                               priority=priority[stage], resources=resources)
        futures[future] = stage
        line("queued", stage)

    def drain_started() -> None:
        while True:
            try:
                event = started.get_nowait()
            except queue.Empty:
                return
            if event.get("stage") in futures.values():
                running.add(event["stage"])
                line("running", event["stage"], f"on worker {event['worker_name']}, {event['device']}")

    def finish(stage: str, outcome: StageOutcome) -> None:
        running.discard(stage)
        if outcome.cancelled:
            summary.cancelled.append(stage)
            line("stopped", stage, f"log: {outcome.log}")
        elif outcome.returncode == 0:
            summary.done.append(stage)
            if outcome.ran:
                measured[stage] = round(outcome.seconds, 1)
            line("done", stage, f"{outcome.seconds:.1f} s" + ("" if outcome.ran else ", unchanged"))
            if summary.interrupted:  # finished during the shutdown: keep it, start nothing new
                return
            for kid in sorted(kids[stage], key=graph.order.index):
                waiting_on[kid].discard(stage)
                if not waiting_on[kid] and kid not in summary.blocked:
                    submit(kid)
        else:
            summary.failed.append(outcome)
            line("failed", stage, f"exit {outcome.returncode}, log: {outcome.log}")
            for lost in sorted(graph.descendants([stage]) - summary.blocked.keys(), key=graph.order.index):
                summary.blocked[lost] = stage
                line("skipped", lost, f"needs {stage}, which failed")

    stop = _StopRequest()
    previous_int, previous_term = signal.signal(signal.SIGINT, stop), signal.signal(signal.SIGTERM, stop)
    try:
        for stage in graph.order:
            if not waiting_on[stage]:
                submit(stage)
        while futures:
            stop.check()
            done = _first_done(list(futures), POLL_S)
            drain_started()
            for future in done:
                stage = futures.pop(future)
                finish(stage, _outcome(future, stage, log_dir))
    except (KeyboardInterrupt, _Interrupted):
        summary.interrupted = True
        drain_started()
        say(f"interrupted: stopping {len(running)} running stage(s), dropping {len(futures) - len(running)} queued")
        cancel.set()
        queued = [future for future, stage in futures.items() if stage not in running]
        client.cancel(queued)
        for future in queued:
            summary.cancelled.append(futures.pop(future))
        _all_done(list(futures), INTERRUPT_GRACE_S + TERMINATE_GRACE_S + 5)
        for future, stage in list(futures.items()):
            outcome = _outcome(future, stage, log_dir)
            finish(stage, outcome)
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
        client.unsubscribe_topic(EVENT_TOPIC)
        save_durations(log_dir, measured)
    return summary


def _first_done(futures: list[Any], timeout: float) -> list[Any]:
    """The futures done within ``timeout`` (none if none is), without raising on the timeout."""
    from distributed import wait

    try:
        return list(wait(futures, timeout=timeout, return_when="FIRST_COMPLETED").done)
    except TimeoutError:
        return []


def _all_done(futures: list[Any], timeout: float) -> None:
    from distributed import wait

    try:
        wait(futures, timeout=timeout)
    except TimeoutError:
        pass


def _outcome(future: Any, stage: str, log_dir: Path) -> StageOutcome:
    """The stage's outcome, or a failure carrying the error if the task itself broke (worker lost, ...)."""
    log = str(log_path(log_dir, stage))
    if future.status == "finished":
        outcome: StageOutcome = future.result()
        return outcome
    if future.status == "cancelled":
        return StageOutcome(stage, EXIT_INTERRUPTED, 0.0, "?", "?", log, cancelled=True, ran=False)
    error = future.exception() if future.status == "error" else f"task {future.status}"
    return StageOutcome(stage, 1, 0.0, "?", "?", f"{log} (runner: {error!r})")


def report_summary(summary: RunSummary, say: Callable[[str], None] = print) -> None:
    for outcome in summary.failed:
        say(f"FAILED: stage '{outcome.stage}' (exit {outcome.returncode}); see {outcome.log}")
    if summary.blocked:
        say(f"not run because an upstream stage failed: {', '.join(summary.blocked)}")
    if summary.interrupted:
        say(f"interrupted; {len(summary.done)} stage(s) finished and are cached; run the same command again to go on")
    elif not summary.failed:
        say(f"all {len(summary.done)} stage(s) done")


# --- command line --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dfgan.parallel",
        description="Run the pipeline's independent DVC stages concurrently on a Dask cluster "
                    "(each as `dvc repro -s <stage>`); the same results as `dvc repro`, sooner.",
    )
    parser.add_argument("targets", nargs="*", help="stages to bring up to date, with their ancestors (default: all)")
    parser.add_argument("--workers", type=int, default=None,
                        help="local workers, one stage each at a time (default: one per GPU, else one per CPU core)")
    parser.add_argument("--gpus", default="auto",
                        help="local GPUs: auto (CUDA_VISIBLE_DEVICES or nvidia-smi), none (stages see no GPU), "
                             "or ids such as 0,1,2,3; each stage sees one")
    parser.add_argument("--address", default=None,
                        help="scheduler of an existing Dask cluster (tcp://host:8786) instead of local workers; "
                             "the repository and the DVC cache must be on a filesystem all workers share")
    parser.add_argument("--scheduler-file", type=Path, default=None,
                        help="the JSON file `dask scheduler --scheduler-file` wrote, instead of --address")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the DVC repository (default: current folder)")
    parser.add_argument("--log-dir", type=Path, default=Path("logs"), help="stage logs, relative to --repo")
    parser.add_argument("--dry-run", action="store_true", help="print the stages that would run, in order, and exit")
    args = parser.parse_args(argv)
    if args.address and args.scheduler_file:
        parser.error("give --address or --scheduler-file, not both")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    return args


def start_client(args: argparse.Namespace, gpus: list[str] | None, n_workers: int) -> tuple[Any, dict[str, str]]:
    """A client of the given cluster, or of a local one whose workers each run one stage at a time."""
    from distributed import Client, LocalCluster

    if args.address or args.scheduler_file:
        # Workers of a cluster started elsewhere may not have this checkout on their path: send the code along.
        import cloudpickle

        if run_stage.__module__ != "__main__":  # __main__ is sent by value anyway
            cloudpickle.register_pickle_by_value(sys.modules[run_stage.__module__])
        if args.scheduler_file:
            return Client(scheduler_file=str(args.scheduler_file)), {}
        return Client(args.address), {}
    # Threads, not processes: each task only waits on its `dvc` subprocess, and the runner stays a single process.
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=False, dashboard_address=None,
                           resources={"GPU": 1} if gpus else None)
    return Client(cluster), worker_devices(n_workers, gpus)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    repo = args.repo.resolve()
    log_dir = args.log_dir if args.log_dir.is_absolute() else repo / args.log_dir
    try:
        graph = read_stage_graph(repo, args.targets)
        plan = stages_to_run(graph, changed_stages(repo))
        load_durations(log_dir)  # a broken file is reported now, not after the run
    except (DvcCommandError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    if not plan.order:
        print(f"nothing to do: all {len(graph.order)} stage(s) are up to date")
        return 0
    if args.dry_run:
        print("\n".join(plan.topological_order()))
        return 0
    external = bool(args.address or args.scheduler_file)
    gpus = None if external else detect_gpus(args.gpus)
    n_workers = args.workers or (len(gpus) if gpus else os.cpu_count() or 1)
    try:
        client, devices = start_client(args, gpus, n_workers)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if external:
        where = f"the cluster at {args.address or args.scheduler_file}"
    else:
        where = f"{n_workers} local worker(s), " + (f"GPUs {','.join(gpus)}" if gpus else "CPU")
    print(f"{len(plan.order)} of {len(graph.order)} stage(s) to run on {where}; logs in {args.log_dir}/", flush=True)
    try:
        summary = run_graph(client, plan, repo, log_dir, devices, say=lambda text: print(text, flush=True))
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()
    report_summary(summary, say=lambda text: print(text, file=sys.stderr if summary.exit_code else sys.stdout))
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
