"""Run the DVC pipeline's independent stages concurrently on a Dask cluster, on the GPUs where they exist.

DVC stays in charge of caching, the lock file and experiments: the stage graph comes from ``dvc dag --dot``, what
needs running from ``dvc status --json``, and every stage runs as ``dvc --wait-for-lock repro -s <stage>`` (separate
``repro -s`` processes of independent stages may run at once; the flag makes each wait for the repository lock that
each holds briefly, instead of failing). This module only decides *when* and *where*:

    python -m dfgan.orchestrate.parallel                         # local: one stage per GPU at a time, or per core
    python -m dfgan.orchestrate.parallel --per-gpu 4             # up to 4 stages on each GPU at once
    python -m dfgan.orchestrate.parallel --workers 2 --gpus none report  # the ancestors of `report`, on 2 CPU workers
    python -m dfgan.orchestrate.parallel --address tcp://head:8786   # an existing Dask cluster (shared filesystem)
    python -m dfgan.orchestrate.parallel -S gan.lambda_l1=50 --name l1-50 --per-gpu 4  # = dvc exp run -n l1-50 -S ...

Each stage's output goes to ``logs/<stage>.log``; a failed stage stops its descendants only, the other branches
finish, and the exit status is non-zero with the failed stages and their logs named. Ctrl-C (or SIGTERM) interrupts
the running stages the way a Ctrl-C in ``dvc repro`` would, so no DVC lock is left held, and rerunning resumes.
Stages with the longest chain of work behind them start first; the chain is counted in seconds once
``logs/durations.json`` holds the stages' earlier run times (the runner keeps it up to date), in stages before.

Local GPUs are handed out by the runner itself (:func:`dfgan.orchestrate.devices.place_stage`): a stage starts on
the least busy GPU that runs fewer than ``--per-gpu`` stages. Every stage gets an equal share of the CPU cores in
OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS (:func:`dfgan.orchestrate.devices.thread_share`), unless
OMP_NUM_THREADS is already set, as torchrun does. ``-S`` and ``--name`` give the runner ``dvc exp run``'s vocabulary
(:mod:`dfgan.orchestrate.experiments`): the params change as ``dvc exp run -S`` changes them (DVC's own parser), and
the finished workspace is saved with ``dvc exp save -n NAME``. The stage graph and its order:
:mod:`dfgan.orchestrate.dag`.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import queue
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfgan.core.errors import InputError
from dfgan.orchestrate.dag import (
    DvcCommandError, StageGraph, changed_stages, dvc_command, load_durations, read_stage_graph, save_durations,
    stage_priorities, stages_to_run,
)
from dfgan.orchestrate.devices import (
    Placement, cluster_thread_shares, detect_gpus, local_slots, place_stage, stage_environment, thread_share,
    usable_cpus,
)
from dfgan.orchestrate.experiments import check_experiment_name, restore_files, save_experiment, set_params

EVENT_TOPIC = "dfgan-parallel"
# Exit status of a run stopped by Ctrl-C, as a shell reports a process killed by SIGINT.
EXIT_INTERRUPTED = 130
# How long a stage gets to stop after its SIGINT (DVC releases its locks), then after SIGTERM, before SIGKILL.
INTERRUPT_GRACE_S = 30.0
TERMINATE_GRACE_S = 10.0
POLL_S = 0.5


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


def run_stage(stage: str, repo: str, log_dir: str, cancel_name: str, assigned: str | None,
              placement: Placement) -> StageOutcome:
    """Run ``dvc repro -s stage`` on this Dask worker, streaming its output to the stage's log; ``assigned`` is the
    GPU the runner picked for it (None: the worker's own devices)."""
    from distributed import Event, get_worker

    worker = get_worker()
    worker_name = str(worker.name)
    cancel = Event(cancel_name)
    threads = placement.worker_threads.get(worker.address, placement.threads)
    env, device = stage_environment(os.environ, assigned, threads, placement.force_threads)
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


def run_graph(client: Any, graph: StageGraph, repo: Path, log_dir: Path, placement: Placement = Placement(),
              say: Callable[[str], None] = print) -> RunSummary:
    """Submit each stage once its parents are done, highest critical path first; one progress line per event.

    With local GPUs (``placement.gpus``) the runner holds a ready stage back until a GPU has a free slot and then
    hands it that GPU (:func:`dfgan.orchestrate.devices.place_stage`): the stages start in priority order, on the least
    busy GPU, never more than ``per_gpu`` on one. On a cluster Dask places them, each asking for one ``GPU`` where workers offer it.
    """
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
    held: list[tuple[float, int, str]] = []  # ready stages waiting for a free GPU slot: (-priority, order, stage)
    capacity = placement.max_running or len(placement.gpus) * placement.per_gpu
    device_of: dict[str, str] = {}  # submitted stage -> the GPU it was given
    on_device: dict[str, int] = {}  # GPU -> stages submitted to it
    arrival = itertools.count()  # ties in priority: first ready, first started

    def line(state: str, stage: str, detail: str = "") -> None:
        finished = len(summary.done) + len(summary.failed) + len(summary.blocked)
        say(f"[{finished:>{width}}/{total}] {state:<8} {stage}{'  ' + detail if detail else ''}")

    def dispatch(stage: str, assigned: str | None) -> None:
        future = client.submit(run_stage, stage, str(repo), str(log_dir), cancel_name, assigned, placement,
                               key=f"dvc-repro-{stage}-{time.time_ns()}", pure=False, retries=0,
                               priority=priority[stage], resources=resources)
        futures[future] = stage

    def start_held() -> None:
        while held and len(futures) < capacity:
            device = place_stage(placement.gpus, placement.per_gpu, on_device)
            if device is None:
                return
            stage = heapq.heappop(held)[2]
            device_of[stage] = device
            on_device[device] = on_device.get(device, 0) + 1
            dispatch(stage, device)

    def submit(stage: str) -> None:
        line("queued", stage)
        if placement.gpus:
            heapq.heappush(held, (-priority[stage], next(arrival), stage))
            start_held()
        else:
            dispatch(stage, "" if placement.hide_gpus else None)

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
        if stage in device_of:
            on_device[device_of.pop(stage)] -= 1
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
        if not summary.interrupted:
            start_held()

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
        dropped = len(futures) - len(running) + len(held)
        say(f"interrupted: stopping {len(running)} running stage(s), dropping {dropped} queued")
        cancel.set()
        summary.cancelled.extend(stage for _, _, stage in sorted(held))
        held.clear()
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
        prog="python -m dfgan.orchestrate.parallel",
        description="Run the pipeline's independent DVC stages concurrently on a Dask cluster "
                    "(each as `dvc repro -s <stage>`); the same results as `dvc repro`, sooner. With -S and --name "
                    "it is `dvc exp run -S ... -n NAME` spread over the GPUs.",
    )
    parser.add_argument("targets", nargs="*", help="stages to bring up to date, with their ancestors (default: all)")
    parser.add_argument("-S", "--set-param", dest="set_params", action="append", default=[], metavar="KEY=VALUE",
                        help="change a param first, as `dvc exp run -S` does (DVC's parser: gan.lambda_l1=50, "
                             "'gan.seeds=[0,1]', +new.key=1 to add, other.yaml:key=value for another params file); "
                             "repeatable; params.yaml is checked against the schema before anything runs")
    parser.add_argument("-n", "--name", default=None,
                        help="once every stage succeeded, save the workspace as this experiment (`dvc exp save -n`), "
                             "for `dvc exp show` and `dvc metrics diff`; without it the workspace is left changed, "
                             "as after `dvc repro`")
    parser.add_argument("--workers", type=int, default=None,
                        help="local workers, one stage each at a time (default: --per-gpu x GPUs, else one per CPU "
                             "core)")
    parser.add_argument("--gpus", default="auto",
                        help="local GPUs: auto (CUDA_VISIBLE_DEVICES or nvidia-smi), none (stages see no GPU), "
                             "or ids such as 0,1,2,3; each stage sees one")
    parser.add_argument("--per-gpu", type=int, default=None, metavar="K",
                        help="stages at once on each local GPU (default 1); each starts on the least busy GPU. "
                             "K > 1 suits small, launch-bound stages (see CUDA MPS in the README). On a cluster, "
                             "start each GPU's worker with --nthreads K --resources GPU=K instead")
    parser.add_argument("--threads-per-stage", type=int, default=None, metavar="N",
                        help="CPU threads of each stage (OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS); "
                             "default: the cores divided by the stages that run at once, unless OMP_NUM_THREADS is "
                             "already set")
    parser.add_argument("--address", default=None,
                        help="scheduler of an existing Dask cluster (tcp://host:8786) instead of local workers; "
                             "the repository and the DVC cache must be on a filesystem all workers share")
    parser.add_argument("--scheduler-file", type=Path, default=None,
                        help="the JSON file `dask scheduler --scheduler-file` wrote, instead of --address")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the DVC repository (default: current folder)")
    parser.add_argument("--log-dir", type=Path, default=Path("logs"), help="stage logs, relative to --repo")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the stages that would run (with the -S changes), in order, and exit; "
                             "the params files are left as they were")
    args = parser.parse_args(argv)
    if args.address and args.scheduler_file:
        parser.error("give --address or --scheduler-file, not both")
    for option in ("workers", "per_gpu", "threads_per_stage"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    if args.per_gpu is not None and (args.address or args.scheduler_file):
        parser.error(f"--per-gpu applies to local GPUs; on a cluster start each GPU's worker with "
                     f"--nthreads {args.per_gpu} --resources GPU={args.per_gpu}")
    return args


def local_placement(args: argparse.Namespace, gpus: list[str] | None,
                    cpus: int | None = None) -> tuple[int, Placement]:
    """The local workers and where their stages go: ``--per-gpu`` stages on each GPU, else (no GPUs) ``--workers``
    or one per core on the CPU; each stage with its share of the cores."""
    cpus = usable_cpus() if cpus is None else cpus
    if gpus:
        per_gpu, n_workers = local_slots(len(gpus), args.per_gpu, args.workers)
    else:
        per_gpu, n_workers = 1, args.workers or cpus
    threads = args.threads_per_stage or thread_share(cpus, n_workers)
    return n_workers, Placement(gpus=tuple(gpus or ()), per_gpu=per_gpu, hide_gpus=gpus == [], threads=threads,
                                force_threads=args.threads_per_stage is not None, max_running=n_workers)


def start_client(args: argparse.Namespace, n_workers: int) -> Any:
    """A client of the given cluster, or of a local one whose workers each run one stage at a time."""
    from distributed import Client, LocalCluster

    if args.address or args.scheduler_file:
        # Workers of a cluster started elsewhere may not have this checkout on their path: send the code along.
        import cloudpickle

        if run_stage.__module__ != "__main__":  # __main__ is sent by value anyway
            cloudpickle.register_pickle_by_value(sys.modules[run_stage.__module__])
        if args.scheduler_file:
            return Client(scheduler_file=str(args.scheduler_file))
        return Client(args.address)
    # Threads, not processes: each task only waits on its `dvc` subprocess, and the runner stays a single process.
    # The runner hands out the GPUs itself (run_graph), so the workers declare no resources.
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=False, dashboard_address=None)
    return Client(cluster)


def cluster_placement(client: Any, threads_per_stage: int | None) -> Placement:
    """Each cluster worker's thread share, from its host's cores and the stages its workers run at once."""
    workers = client.scheduler_info()["workers"]
    if threads_per_stage is not None:
        return Placement(threads=threads_per_stage, force_threads=True)
    return Placement(worker_threads=cluster_thread_shares(workers, client.run(usable_cpus)))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    repo = args.repo.resolve()
    log_dir = args.log_dir if args.log_dir.is_absolute() else repo / args.log_dir
    originals: dict[Path, bytes] = {}
    try:
        if args.name is not None:
            check_experiment_name(repo, args.name)
        originals = set_params(repo, args.set_params) if args.set_params else {}
        graph = read_stage_graph(repo, args.targets)
        plan = stages_to_run(graph, changed_stages(repo))
        load_durations(log_dir)  # a broken file is reported now, not after the run
    except InputError as error:
        print("\n".join(error.lines()), file=sys.stderr)
        return 2
    except (DvcCommandError, ValueError) as error:
        restore_files(originals)
        print(error, file=sys.stderr)
        return 2
    changes = "".join(f" -S {override}" for override in args.set_params)
    if args.dry_run:
        restore_files(originals)
        print("\n".join(plan.topological_order()) if plan.order else
              f"nothing to do: all {len(graph.order)} stage(s) are up to date{' with' + changes if changes else ''}")
        return 0
    if changes:
        print(f"params changed:{changes}", flush=True)
    if not plan.order:
        print(f"nothing to do: all {len(graph.order)} stage(s) are up to date")
        return save_named(repo, args) if args.name else 0
    external = bool(args.address or args.scheduler_file)
    try:
        gpus = None if external else detect_gpus(args.gpus)
        n_workers, placement = (0, Placement()) if external else local_placement(args, gpus)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if args.per_gpu is not None and not placement.gpus:
        print("no GPUs: --per-gpu has no effect (--workers sets the stages at once on the CPU)", flush=True)
    try:
        client = start_client(args, n_workers)
        if external:
            placement = cluster_placement(client, args.threads_per_stage)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if external:
        where = f"the cluster at {args.address or args.scheduler_file}"
        shares = sorted(set(placement.worker_threads.values())) or [placement.threads]
        threads = f"{'/'.join(map(str, shares))} CPU thread(s) per stage"
    else:
        where = f"{n_workers} local worker(s), " + (
            f"GPUs {','.join(gpus or ())}, up to {placement.per_gpu} stage(s) each" if placement.gpus else "CPU")
        kept = "OMP_NUM_THREADS" in os.environ and not placement.force_threads
        threads = (f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} as set" if kept
                   else f"{placement.threads} CPU thread(s) per stage")
    print(f"{len(plan.order)} of {len(graph.order)} stage(s) to run on {where}; {threads}; logs in {args.log_dir}/",
          flush=True)
    try:
        summary = run_graph(client, plan, repo, log_dir, placement, say=lambda text: print(text, flush=True))
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()
    report_summary(summary, say=lambda text: print(text, file=sys.stderr if summary.exit_code else sys.stdout))
    if summary.exit_code:
        if args.name:
            print(f"experiment '{args.name}' not saved: run the same command again to finish it", file=sys.stderr)
        return summary.exit_code
    return save_named(repo, args) if args.name else 0


def save_named(repo: Path, args: argparse.Namespace) -> int:
    saved = save_experiment(repo, args.name, args.targets)
    if saved.returncode != 0:
        print(f"`dvc exp save -n {args.name}` failed (exit {saved.returncode}):\n{saved.stderr or saved.stdout}",
              file=sys.stderr)
        return 1
    if saved.stderr.strip():  # DVC's warnings, such as untracked files left out of the experiment
        print(saved.stderr.strip(), file=sys.stderr)
    print(f"saved experiment '{args.name}': dvc exp show; dvc metrics diff HEAD {args.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
