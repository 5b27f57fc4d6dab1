"""One stage on a Dask worker: ``dvc repro -s <stage>`` in a session of its own, its output in ``logs/<stage>.log``,
stopped as a Ctrl-C stops ``dvc repro`` when the runner sets the run's cancel event.

The stage says on the topic :data:`EVENT_TOPIC` when it starts and how it ended, through the worker's client: that
connection outlives the worker's registration, so the runner (:mod:`dfgan.orchestrate.stage_scheduler`) still hears
how a stage ended after the Dask scheduler dropped the worker that ran it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfgan.orchestrate.dag import dvc_command
from dfgan.orchestrate.devices import Placement, stage_environment

EVENT_TOPIC = "dfgan-parallel"
# Exit status of a run stopped by Ctrl-C, as a shell reports a process killed by SIGINT.
EXIT_INTERRUPTED = 130
# How long a stage gets to stop after its SIGINT (DVC releases its locks), then after SIGTERM, before SIGKILL.
INTERRUPT_GRACE_S = 30.0
TERMINATE_GRACE_S = 10.0
POLL_S = 0.5


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


def publish(client: Any, message: dict[str, Any]) -> None:
    """One message to the runner on :data:`EVENT_TOPIC`. A lost connection loses only the message: the task's
    result still reports the stage to a runner that can hear it."""
    try:
        client.log_event(EVENT_TOPIC, message)
    except OSError:  # distributed's CommClosedError and timeouts are OSErrors
        pass


def running_event(stage: str, worker: Any, device: str) -> dict[str, str]:
    return {"event": "running", "stage": stage, "worker": str(worker.address), "worker_name": str(worker.name),
            "device": device}


def ended_event(outcome: StageOutcome) -> dict[str, Any]:
    return {"event": "ended", "stage": outcome.stage, "outcome": dataclasses.asdict(outcome)}


def run_stage(stage: str, repo: str, log_dir: str, cancel_name: str, assigned: str | None,
              placement: Placement) -> StageOutcome:
    """Run ``dvc repro -s stage`` on this Dask worker, streaming its output to the stage's log; ``assigned`` is the
    GPU the runner picked for it (None: the worker's own devices)."""
    from distributed import Event, get_client, get_worker

    worker = get_worker()
    worker_name = str(worker.name)
    client = get_client()
    cancel = Event(cancel_name, client=client)
    threads = placement.worker_threads.get(worker.address, placement.threads)
    env, device = stage_environment(os.environ, assigned, threads, placement.force_threads)
    log = log_path(Path(log_dir), stage)
    shown_log = os.path.relpath(log, repo) if log.is_relative_to(repo) else str(log)
    if cancel.is_set():
        return StageOutcome(stage, EXIT_INTERRUPTED, 0.0, worker_name, device, shown_log, cancelled=True, ran=False)
    publish(client, running_event(stage, worker, device))
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
    outcome = StageOutcome(stage, int(proc.returncode), seconds, worker_name, device, shown_log, cancelled, ran)
    publish(client, ended_event(outcome))
    return outcome
