"""Training curves in DVCLive's layout, with or without DVCLive installed.

The stages log their curves with ``dvclive.Live`` (``dvc plots show`` reads them). DVCLive imports DVC itself, which
a bare GPU machine running the stage entry points without DVC (``benchmarks/gpu_check.sh``) may lack: there
:class:`PlainLive` writes the same files (``metrics.json``, ``plots/metrics/<name>.tsv``) for the few calls the
trainers make, so nothing else changes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Protocol

from dfgan.core.paths import PLOTS_FOLDER

METRICS_FILE = "metrics.json"


class TrainingLog(Protocol):
    """What the trainers use of ``dvclive.Live``."""

    step: int

    def log_metric(self, name: str, val: float, plot: bool = True) -> None: ...

    def next_step(self) -> None: ...

    def make_summary(self) -> None: ...

    def end(self) -> None: ...

    def __enter__(self) -> "TrainingLog": ...

    def __exit__(self, *exc: object) -> None: ...


class PlainLive:
    """The subset of ``dvclive.Live`` the trainers call, writing DVCLive's files: one ``step<TAB>name`` TSV per
    plotted metric (a nested name ``a/b`` -> ``plots/metrics/a/b.tsv``) and ``metrics.json`` with the latest value
    of each metric, nested the same way, and the step."""

    def __init__(self, directory: str | Path, resume: bool = False) -> None:
        self.dir = Path(directory)
        self.summary: dict[str, Any] = {}
        self.step = 0
        summary_path = self.dir / METRICS_FILE
        if resume and summary_path.is_file():
            self.summary = json.loads(summary_path.read_text())
            previous = int(self.summary.get("step", 0))
            self.step = previous + 1 if previous else 0  # as DVCLive: continue after the last logged step
        elif not resume:  # as DVCLive: a new run starts from empty curves
            shutil.rmtree(self.dir / PLOTS_FOLDER, ignore_errors=True)
            summary_path.unlink(missing_ok=True)
        self.dir.mkdir(parents=True, exist_ok=True)

    def log_metric(self, name: str, val: float, plot: bool = True) -> None:
        node = self.summary
        *parents, leaf = name.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = val
        if plot:
            path = self.dir / PLOTS_FOLDER / f"{name}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists()
            with path.open("a") as tsv:
                if new:
                    tsv.write(f"step\t{leaf}\n")
                tsv.write(f"{self.step}\t{val}\n")

    def make_summary(self) -> None:
        self.summary["step"] = self.step
        (self.dir / METRICS_FILE).write_text(json.dumps(self.summary, indent=4) + "\n")

    def next_step(self) -> None:
        self.make_summary()
        self.step += 1

    def end(self) -> None:
        if "step" in self.summary:
            self.step = int(self.summary["step"])
        self.make_summary()

    def __enter__(self) -> "PlainLive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()


def open_live(directory: str | Path, resume: bool = False) -> TrainingLog:
    """``dvclive.Live`` in ``directory`` (no dvc.yaml, no experiment, no report), or :class:`PlainLive` where
    DVCLive (and so DVC) is not installed."""
    try:
        from dvclive import Live  # imported here: it pulls in DVC, which the rest of the library does not need
    except ImportError:
        return PlainLive(directory, resume)
    return Live(dir=str(directory), resume=resume, dvcyaml=None, save_dvc_exp=False, report=None)
