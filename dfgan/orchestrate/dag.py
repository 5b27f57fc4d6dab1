"""The DVC stage graph the runners work on: read from ``dvc dag --dot``, restricted to what ``dvc status`` says needs
running, and ordered: stages with the longest chain of work behind them first, counted in seconds once
``logs/durations.json`` holds the stages' earlier run times; :func:`simulate_makespan` predicts a run's wall time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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


