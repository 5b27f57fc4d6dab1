"""The runner's scheduling loop, on the client: submit each stage once its parents are done, highest critical path
first, on a free GPU slot; one progress line per event; stop cleanly on Ctrl-C, SIGTERM or the loss of a worker.

A worker can be lost: the Dask scheduler drops a worker it has not heard from within
``distributed.scheduler.worker-ttl`` (a runner paused by SIGSTOP or a suspended laptop: its local workers stop
heartbeating along with it), or one that died. Its stages' results then never arrive, and with no worker left
nothing ever runs again. So every :data:`WORKER_CHECK_S` the loop asks the scheduler which workers it has; when a
worker that was running a stage is gone, or none is left, the run stops as a Ctrl-C stops it, waits (bounded) for
the lost stages' own word on how they ended (:mod:`dfgan.orchestrate.stage_worker` publishes it), and ends with
:data:`EXIT_WORKERS_LOST` and one line naming the finished stages and the command that resumes.
"""

from __future__ import annotations

import heapq
import itertools
import os
import queue
import signal
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfgan.orchestrate.dag import StageGraph, load_durations, save_durations, stage_priorities
from dfgan.orchestrate.devices import Placement, place_stage
from dfgan.orchestrate.stage_worker import (
    EVENT_TOPIC, EXIT_INTERRUPTED, INTERRUPT_GRACE_S, POLL_S, TERMINATE_GRACE_S, StageOutcome, log_path, run_stage,
)

# Exit status of a run that lost its workers: sysexits' EX_TEMPFAIL, "try again later".
EXIT_WORKERS_LOST = 75
# How often the loop asks the Dask scheduler which workers it has.
WORKER_CHECK_S = 2.0
# How long stopping waits for the running stages: their SIGINT grace, their SIGTERM grace and a margin.
STOP_GRACE_S = INTERRUPT_GRACE_S + TERMINATE_GRACE_S + 5


@dataclass
class RunSummary:
    planned: tuple[str, ...] = ()
    done: list[str] = field(default_factory=list)
    failed: list[StageOutcome] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)  # stage -> the failed ancestor that stopped it
    cancelled: list[str] = field(default_factory=list)
    interrupted: bool = False
    lost_workers: list[str] = field(default_factory=list)  # the workers the Dask scheduler dropped mid-run
    lost: list[str] = field(default_factory=list)  # stages of lost workers whose end the runner never heard of

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.lost_workers:
            return EXIT_WORKERS_LOST
        return 1 if self.failed else 0

    @property
    def stopping(self) -> bool:
        return self.interrupted or bool(self.lost_workers)


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM: the clean cancellation of the running stages."""


class _WorkersLost(Exception):
    """The Dask scheduler dropped a worker that was running a stage, or every worker."""

    def __init__(self, workers: list[str], stages: set[str]) -> None:
        super().__init__(", ".join(workers))
        self.workers = workers
        self.stages = stages


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


class StageScheduler:
    """Submits each stage once its parents are done, highest critical path first; one progress line per event.

    With local GPUs (``placement.gpus``) a ready stage is held back until a GPU has a free slot and then gets that GPU
    (:func:`dfgan.orchestrate.devices.place_stage`): the stages start in priority order, on the least busy GPU, never
    more than ``per_gpu`` on one. On a cluster Dask places them, each asking for one ``GPU`` where workers offer it.
    """

    def __init__(self, client: Any, graph: StageGraph, repo: Path, log_dir: Path,
                 placement: Placement = Placement(), say: Callable[[str], None] = print) -> None:
        from distributed import Event

        self.client, self.graph, self.repo, self.log_dir, self.placement, self.say = (
            client, graph, repo, log_dir, placement, say)
        self.kids = graph.children()
        self.waiting_on = {name: set(graph.parents[name]) for name in graph.order}
        self.priority = stage_priorities(graph, load_durations(log_dir))
        self.measured: dict[str, float] = {}
        workers = client.scheduler_info()["workers"].values()
        self.resources = {"GPU": 1} if any("GPU" in (info.get("resources") or {}) for info in workers) else None
        self.cancel_name = f"{EVENT_TOPIC}-cancel-{os.getpid()}-{time.time_ns()}"
        self.cancel = Event(self.cancel_name, client=client)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.summary = RunSummary(planned=graph.order)
        self.futures: dict[Any, str] = {}
        self.running: dict[str, str] = {}  # started stage -> the address of its worker
        self.ended: dict[str, StageOutcome] = {}  # how each stage ended, in its worker's own words
        self.worker_names: dict[str, str] = {}  # worker address -> name, as the stages report them
        self.workers_seen: set[str] = set()
        self.next_worker_check = 0.0
        # Ready stages waiting for a free GPU slot: (-priority, order, stage).
        self.held: list[tuple[float, int, str]] = []
        self.capacity = placement.max_running or len(placement.gpus) * placement.per_gpu
        self.device_of: dict[str, str] = {}  # submitted stage -> the GPU it was given
        self.on_device: dict[str, int] = {}  # GPU -> stages submitted to it
        self.arrival = itertools.count()  # ties in priority: first ready, first started
        self.width = len(str(len(graph.order)))

    def run(self) -> RunSummary:
        self.client.subscribe_topic(EVENT_TOPIC, lambda event: self.events.put(event[1]))
        stop = _StopRequest()
        previous_int, previous_term = signal.signal(signal.SIGINT, stop), signal.signal(signal.SIGTERM, stop)
        try:
            for stage in self.graph.order:
                if not self.waiting_on[stage]:
                    self.submit(stage)
            while self.futures:
                stop.check()
                self.check_workers()
                done = _first_done(list(self.futures), POLL_S)
                self.drain_events()
                for future in done:
                    stage = self.futures.pop(future)
                    self.finish(stage, _outcome(future, stage, self.log_dir))
        except (KeyboardInterrupt, _Interrupted):
            self.summary.interrupted = True
            self.stop("interrupted")
        except _WorkersLost as lost:
            self.summary.lost_workers = lost.workers
            self.stop(f"lost Dask worker(s) {', '.join(lost.workers)}", lost.stages)
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
            self.client.unsubscribe_topic(EVENT_TOPIC)
            save_durations(self.log_dir, self.measured)
        return self.summary

    # --- progress ---------------------------------------------------------------------------------------------

    def line(self, state: str, stage: str, detail: str = "") -> None:
        finished = len(self.summary.done) + len(self.summary.failed) + len(self.summary.blocked)
        self.say(f"[{finished:>{self.width}}/{len(self.graph.order)}] {state:<8} {stage}"
                 f"{'  ' + detail if detail else ''}")

    def drain_events(self) -> None:
        """The stages' own messages: which worker started one, and how one ended."""
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            stage = event.get("stage")
            if event.get("event") == "ended":
                self.ended[stage] = StageOutcome(**event["outcome"])
            elif stage in self.futures.values():
                self.running[stage] = event["worker"]
                self.worker_names[event["worker"]] = event["worker_name"]
                self.line("running", stage, f"on worker {event['worker_name']}, {event['device']}")

    # --- submitting ---------------------------------------------------------------------------------------------

    def dispatch(self, stage: str, assigned: str | None) -> None:
        future = self.client.submit(run_stage, stage, str(self.repo), str(self.log_dir), self.cancel_name, assigned,
                                    self.placement, key=f"dvc-repro-{stage}-{time.time_ns()}", pure=False,
                                    retries=0, priority=self.priority[stage], resources=self.resources)
        self.futures[future] = stage

    def start_held(self) -> None:
        while self.held and len(self.futures) < self.capacity:
            device = place_stage(self.placement.gpus, self.placement.per_gpu, self.on_device)
            if device is None:
                return
            stage = heapq.heappop(self.held)[2]
            self.device_of[stage] = device
            self.on_device[device] = self.on_device.get(device, 0) + 1
            self.dispatch(stage, device)

    def submit(self, stage: str) -> None:
        self.line("queued", stage)
        if self.placement.gpus:
            heapq.heappush(self.held, (-self.priority[stage], next(self.arrival), stage))
            self.start_held()
        else:
            self.dispatch(stage, "" if self.placement.hide_gpus else None)

    def finish(self, stage: str, outcome: StageOutcome) -> None:
        summary = self.summary
        self.running.pop(stage, None)
        if stage in self.device_of:
            self.on_device[self.device_of.pop(stage)] -= 1
        if outcome.cancelled:
            summary.cancelled.append(stage)
            self.line("stopped", stage, f"log: {outcome.log}")
        elif outcome.returncode == 0:
            summary.done.append(stage)
            if outcome.ran:
                self.measured[stage] = round(outcome.seconds, 1)
            self.line("done", stage, f"{outcome.seconds:.1f} s" + ("" if outcome.ran else ", unchanged"))
            if summary.stopping:  # finished during the shutdown: keep it, start nothing new
                return
            for kid in sorted(self.kids[stage], key=self.graph.order.index):
                self.waiting_on[kid].discard(stage)
                if not self.waiting_on[kid] and kid not in summary.blocked:
                    self.submit(kid)
        else:
            summary.failed.append(outcome)
            self.line("failed", stage, f"exit {outcome.returncode}, log: {outcome.log}")
            for lost in sorted(self.graph.descendants([stage]) - summary.blocked.keys(), key=self.graph.order.index):
                summary.blocked[lost] = stage
                self.line("skipped", lost, f"needs {stage}, which failed")
        if not summary.stopping:
            self.start_held()

    # --- lost workers and stopping ------------------------------------------------------------------------------

    def check_workers(self) -> None:
        """Raise :class:`_WorkersLost` when a worker that runs a stage is gone, or every worker seen so far is.

        Asked every :data:`WORKER_CHECK_S`. A cluster with no worker yet is waited for, as Dask waits."""
        now = time.monotonic()
        if now < self.next_worker_check:
            return
        self.next_worker_check = now + WORKER_CHECK_S
        present = set(self.client.nthreads())
        self.drain_events()  # a stage reported running on a worker that is already gone counts as lost
        orphaned = {stage for stage, address in self.running.items() if address not in present}
        gone = sorted(self.workers_seen - present) + sorted({self.running[stage] for stage in orphaned}
                                                            - self.workers_seen)
        self.workers_seen |= present
        if orphaned or (not present and gone):
            raise _WorkersLost([self.worker_names.get(address, address) for address in gone], orphaned)

    def stop(self, reason: str, lost: Collection[str] = ()) -> None:
        """Stop as a Ctrl-C in ``dvc repro`` would: the running stages get SIGINT (the cancel event), the queued ones
        are dropped; then wait, at most :data:`STOP_GRACE_S`, for the running stages to end. ``lost``: stages whose
        worker is gone; Dask never reports them, their own ``ended`` message does, if it comes."""
        summary = self.summary
        self.drain_events()
        lost_futures = [future for future, stage in self.futures.items() if stage in lost]
        self.client.cancel(lost_futures)  # never started again elsewhere
        for future in lost_futures:
            self.futures.pop(future)
        dropped = len(self.futures) + len(lost_futures) - len(self.running) + len(self.held)
        self.say(f"{reason}: stopping {len(self.running)} running stage(s), dropping {dropped} queued")
        self.cancel.set()
        summary.cancelled.extend(stage for _, _, stage in sorted(self.held))
        self.held.clear()
        queued = [future for future, stage in self.futures.items() if stage not in self.running]
        self.client.cancel(queued)
        for future in queued:
            summary.cancelled.append(self.futures.pop(future))
        awaited = set(lost) & set(self.running)
        deadline = time.monotonic() + STOP_GRACE_S
        while (self.futures or awaited) and time.monotonic() < deadline:
            done = _first_done(list(self.futures), POLL_S) if self.futures else _pause(POLL_S)
            self.drain_events()
            for future in done:
                stage = self.futures.pop(future)
                self.finish(stage, _outcome(future, stage, self.log_dir))
            for stage in sorted(awaited & self.ended.keys(), key=self.graph.order.index):
                awaited.discard(stage)
                self.finish(stage, self.ended[stage])
        for future, stage in list(self.futures.items()):
            self.finish(stage, _outcome(future, stage, self.log_dir))
        for stage in sorted(awaited, key=self.graph.order.index):
            self.running.pop(stage, None)
            summary.lost.append(stage)
            self.line("lost", stage, "its worker is gone; a rerun finds out whether it finished")


def run_graph(client: Any, graph: StageGraph, repo: Path, log_dir: Path, placement: Placement = Placement(),
              say: Callable[[str], None] = print) -> RunSummary:
    """Run the stages of ``graph`` on ``client``'s cluster (:class:`StageScheduler`)."""
    return StageScheduler(client, graph, repo, log_dir, placement, say).run()


def _pause(seconds: float) -> list[Any]:
    time.sleep(seconds)
    return []


def _first_done(futures: list[Any], timeout: float) -> list[Any]:
    """The futures done within ``timeout`` (none if none is), without raising on the timeout."""
    from distributed import wait

    try:
        return list(wait(futures, timeout=timeout, return_when="FIRST_COMPLETED").done)
    except TimeoutError:
        return []


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


def report_summary(summary: RunSummary, say: Callable[[str], None] = print, command: str = "the same command") -> None:
    for outcome in summary.failed:
        say(f"FAILED: stage '{outcome.stage}' (exit {outcome.returncode}); see {outcome.log}")
    if summary.blocked:
        say(f"not run because an upstream stage failed: {', '.join(summary.blocked)}")
    if summary.interrupted:
        say(f"interrupted; {len(summary.done)} stage(s) finished and are cached; run the same command again to go on")
    elif summary.lost_workers:
        say(lost_workers_line(summary, command))
    elif not summary.failed:
        say(f"all {len(summary.done)} stage(s) done")


def lost_workers_line(summary: RunSummary, command: str) -> str:
    """The one line of a run that lost its workers: what finished, what did not, how to go on."""
    done = set(summary.done)
    unfinished = [stage for stage in summary.planned if stage not in done]
    return (f"stopped: lost Dask worker(s) {', '.join(summary.lost_workers)} (dropped by the Dask scheduler: paused "
            f"past distributed.scheduler.worker-ttl, or died); finished {len(done)} of {len(summary.planned)} "
            f"stage(s): {', '.join(summary.done) or 'none'}; not finished: {', '.join(unfinished) or 'none'}; "
            f"resume with: {command} (finished stages are cached and skipped)")
