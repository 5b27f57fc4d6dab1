"""The steps of the GPU check (benchmarks/gpu_check.py runs each as its own process, under its own deadline).

    python -m benchmarks.gpu_check_steps STEP OUT_DIR/check.json

Steps: ``setup`` (wheels, versions, modules, the Inception file), ``graphs`` (a: CUDA graphs really used and
captured = eager, a learning-rate scheduler step included, and a resume with graphs), ``timing`` (b: steady-state
step times), ``profile`` (c: torch.profiler's top kernels), ``memory`` (d: peak memory of one process per model),
``estimate`` (f); ``concurrent`` (e) is a module of its own, ``python -m benchmarks.gpu_check_concurrent
OUT_DIR/check.json``, built on this one's ``CheckConfig`` and ``Report``. Each prints one line per measurement -
``TIME``, ``MEMORY``, ``PROFILE``/``KERNEL``, ``CONCURRENT`` records (``key=value``) - and one ``CHECK <item>:
ok|fail|skipped (why)`` line per verdict. A CUDA-only item on a CPU is ``skipped (no CUDA)``, never passed. Exit
status: 1 if an item failed, 3 if every item was skipped, else 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from benchmarks.throughput import (
    PRECISIONS, event_times, gan_settings_for, gan_step_call, random_fid_term, seg_step_call, synchronize,
    time_synthesis_batch, untimed_calls,
)
from dfgan.core.params_file import load_settings
from dfgan.core.settings import Settings, with_values
from dfgan.core.speed import CapturedStep, configure_determinism
from dfgan.gan.inception import FEATURE_DIM, load_inception
from dfgan.gan.step import FidTerm
from dfgan.seg.config import SegConfig

SKIPPED_EXIT = 3
NO_CUDA = "no CUDA"
GAN_MODELS = ("pix2pix", "dfgan")
MODELS = (*GAN_MODELS, "unetpp")
MODES = ("eager", "graphs")
MODULES = ("yaml", "numpy", "scipy", "pandas", "cv2", "PIL", "segmentation_models_pytorch", "tqdm", "matplotlib")
TOLERANCE = {"fp32": 1e-3, "bf16": 1e-2}  # captured vs eager: largest relative difference allowed


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Report:
    """What a step prints: records (one measurement a line) and verdicts; its exit status from the verdicts."""

    def __init__(self) -> None:
        self.statuses: list[str] = []

    def record(self, kind: str, **fields: Any) -> None:
        print(kind, " ".join(f"{key}={_number(value)}" for key, value in fields.items()), flush=True)
        self.statuses.append("ok")

    def check(self, item: str, ok: bool | None, detail: str = "") -> None:
        """``ok``: True (ok), False (fail) or None (skipped)."""
        status = {True: "ok", False: "fail", None: "skipped"}[ok]
        print(f"CHECK {item}: {status}" + (f" ({detail})" if detail else ""), flush=True)
        self.statuses.append(status)

    def skip_all(self, items: list[str], reason: str) -> None:
        for item in items:
            self.check(item, None, reason)

    @contextlib.contextmanager
    def guard(self, item: str) -> Iterator[None]:
        """Run one item: an exception fails it (with its first line) and the step goes on with the next."""
        try:
            yield
        except Exception as error:
            first = str(error).splitlines()[0] if str(error) else ""
            self.check(item, False, f"{type(error).__name__}: {first}"[:400])

    def exit_status(self) -> int:
        if "fail" in self.statuses:
            return 1
        return SKIPPED_EXIT if self.statuses and set(self.statuses) == {"skipped"} else 0


@dataclasses.dataclass(frozen=True)
class CheckConfig:
    """The check's sizes (benchmarks/gpu_check.py writes them to OUT_DIR/check.json)."""

    out: str
    dry_run: bool
    params: str  # the paper profile for this machine (Inception file, no encoder download, not deterministic)
    params_graphs: str  # the same with gan.cuda_graphs and seg.cuda_graphs on (the estimate's profile)
    size: int
    batch: int
    repeats: int  # timed steps per row (>= 20 on a GPU)
    profile_steps: int
    graph_steps: int  # captured vs eager
    scheduler_after: list[int]
    conc_pool: int  # the concurrent runs' training-set size (its pool: 80 % train, 20 % validation)
    conc_epochs: int  # epochs shared by the K runs of a concurrency group
    ks: list[int]
    conc_variant: str
    wheels_dir: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> "CheckConfig":
        return cls(**json.loads(Path(path).read_text()))

    def settings(self) -> Settings:
        return load_settings(self.params)

    def gan(self, precision: str, graphs: bool = False) -> Settings:
        return gan_settings_for(self.settings(), self.size, self.batch, precision, "off", cuda_graphs=graphs)

    def seg(self) -> SegConfig:
        seg = SegConfig.of(self.settings().seg, "none")
        return dataclasses.replace(seg, encoder_weights=None, batch_size=self.batch)


def cuda_device() -> torch.device | None:
    return torch.device("cuda") if torch.cuda.is_available() else None


def device_for(config: CheckConfig) -> torch.device:
    device = cuda_device() or torch.device("cpu")
    configure_determinism(False)  # the GAN graph needs it off (dfgan.gan.step.gan_cuda_graphs); autotuned kernels
    return device


def fid_term(config: CheckConfig, device: torch.device) -> FidTerm:
    return random_fid_term(load_inception(device, config.settings().fid.inception_path), device)


# ----------------------------------------------------------------------------------------------------------------------
# setup


def setup(config: CheckConfig, report: Report) -> None:
    if config.wheels_dir:
        wheels = sorted(Path(config.wheels_dir).glob("*.whl"))
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
             "--no-cache-dir", "--upgrade", "--target", str(Path(config.out) / "site"), *map(str, wheels)],
            capture_output=True, text=True)
        report.check("wheels", result.returncode == 0 and bool(wheels),
                     f"{len(wheels)} from {config.wheels_dir} into {config.out}/site" if result.returncode == 0
                     else result.stderr.strip()[-300:])
        importlib.invalidate_caches()
    print("torch", torch.__version__, "cuda", torch.version.cuda, "python", sys.version.split()[0],
          "cpus", len(os.sched_getaffinity(0)), flush=True)
    device = cuda_device()
    if device is not None:
        properties = torch.cuda.get_device_properties(device)
        print(f"device {properties.name} {properties.total_memory / 2**30:.0f} GiB", flush=True)  # for the estimate
        report.check("cuda", True, properties.name)
    else:
        report.check("cuda", None if config.dry_run else False, f"{NO_CUDA}: " + (
            "a dry run, the CUDA-only items are skipped" if config.dry_run else "this check needs a GPU"))
    missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
    report.check("modules", not missing, f"missing {missing}: carry their wheels (WHEELS_DIR)" if missing
                 else "none missing")
    print("dvclive:", "installed" if importlib.util.find_spec("dvclive") else "not installed (curves in its layout)")
    print("nvidia-cuda-mps-control:", shutil.which("nvidia-cuda-mps-control") or "not found (no MPS groups)")
    path = config.settings().fid.inception_path
    try:
        from dfgan.gan.inception import inception_weights_path

        found = Path(path) if path else inception_weights_path()
        report.check("inception", found.is_file(), str(found))
    except FileNotFoundError as error:
        report.check("inception", False, f"{error}; set INCEPTION_PATH (python -m benchmarks.half_inception OUT)")


# ----------------------------------------------------------------------------------------------------------------------
# (a) CUDA graphs used, captured = eager (with scheduler steps), a resume with graphs


def graphs(config: CheckConfig, report: Report) -> None:
    from benchmarks.graph_compare import (
        captured_vs_eager_gan, captured_vs_eager_seg, comparison_verdict, resume_verdict, resume_with_graphs,
    )

    items = [f"graphs {m} {p}" for m in GAN_MODELS for p in PRECISIONS] + ["graphs unetpp fp32",
                                                                          "resume dfgan fp32 with graphs"]
    device = cuda_device()
    if device is None:
        report.skip_all(items, f"{NO_CUDA}: CUDA graphs need a GPU")
        return
    device_for(config)
    term = fid_term(config, device)
    decay = {"gan.n_epochs": 1, "gan.n_epochs_decay": len(config.scheduler_after) + 1}  # each scheduler step moves lr
    for model in GAN_MODELS:
        for precision in PRECISIONS:
            item = f"graphs {model} {precision}"
            with report.guard(item):
                comparison = captured_vs_eager_gan(with_values(config.gan(precision), decay), model, device, term,
                                                   config.graph_steps, scheduler_after=config.scheduler_after)
                report.check(item, *comparison_verdict(comparison, TOLERANCE[precision]))
    with report.guard("graphs unetpp fp32"):
        comparison = captured_vs_eager_seg(config.seg(), config.size, device, config.graph_steps)
        report.check("graphs unetpp fp32", *comparison_verdict(comparison, TOLERANCE["fp32"]))
    with report.guard(items[-1]):
        resumed = resume_with_graphs(config.gan("fp32"), "dfgan", device, term.extractor, Path(config.out) / "resume")
        report.check(items[-1], *resume_verdict(resumed, TOLERANCE["fp32"]))


# ----------------------------------------------------------------------------------------------------------------------
# (b) steady-state step times


def _timed(report: Report, item: str, fields: dict[str, Any], step: Callable[[], Any], device: torch.device,
           repeats: int, captured: CapturedStep | None = None, graphs: bool = False) -> None:
    times = event_times(step, device, repeats, untimed_calls(captured, 1))
    row = {**fields, "steps": times.steps, "per_step_ms": round(times.per_step_ms, 3),
           "median_ms": round(times.median_ms, 3), "timer": times.timer}
    if graphs:
        problem = "no CUDA graph" if captured is None else captured.problem()
        if problem is not None:  # an eager time must not pass for a graph's
            report.check(item, False, f"the graph was not used: {problem}; {row['per_step_ms']} ms per step")
            return
        row["replays"] = captured.replays if captured is not None else 0
    report.record("TIME", **row)


def timing(config: CheckConfig, report: Report) -> None:
    device = device_for(config)
    cuda = device.type == "cuda"
    term = fid_term(config, device)
    common = {"size": config.size, "batch": config.batch}
    for model in MODELS:
        for mode in MODES:
            for precision in PRECISIONS:
                item = f"timing {model} {mode} {precision}"
                if not cuda and (mode == "graphs" or precision == "bf16"):
                    report.check(item, None, f"{NO_CUDA}: {'CUDA graphs' if mode == 'graphs' else 'bf16 autocast'}")
                    continue
                with report.guard(item):
                    graphs = mode == "graphs"
                    if model == "unetpp":
                        step, captured = seg_step_call(config.seg(), config.size, device, precision, graphs)
                    else:
                        step, captured = gan_step_call(config.gan(precision, graphs), model, device, term)
                    fields = {"model": model, "mode": mode, "precision": precision, **common}
                    _timed(report, item, fields, step, device, config.repeats, captured, graphs)
    # The DF-GAN step's FID term on its own: the Inception forward + backward, and the distance + its gradient.
    fake = (torch.rand(config.batch, 1, config.size, config.size, device=device) * 2 - 1).requires_grad_(True)
    with report.guard("timing inception"):
        _timed(report, "timing inception", {"model": "inception", "mode": "eager", "precision": "fp32", **common},
               lambda: torch.autograd.grad(term.extractor(fake).sum(), fake), device, config.repeats)
    features = (torch.rand(config.batch, FEATURE_DIM, device=device) * 0.4).requires_grad_(True)
    for mode, sync_free in (("eigvalsh", False), ("sync_free", True)):
        distance = FidTerm(term.extractor, term.fid_loss, sync_free=sync_free).distance
        with report.guard(f"timing fid {mode}"):
            _timed(report, f"timing fid {mode}", {"model": "fid", "mode": mode, "precision": "fp32", **common},
                   lambda: torch.autograd.grad(distance(features), features), device, config.repeats)
    with report.guard("timing synthesis"):
        seconds = time_synthesis_batch(config.gan("fp32"), device, term.extractor, config.repeats)
        report.record("TIME", model="synthesis", mode="eager", precision="fp32", **common, steps=config.repeats,
                      per_step_ms=round(1e3 * seconds, 3), median_ms=round(1e3 * seconds, 3), timer="wall_median")


# ----------------------------------------------------------------------------------------------------------------------
# (c) torch.profiler: the top 15 kernels of each model's eager step


def _device_time(event: Any) -> float:
    """An averaged profiler event's own device time in microseconds (named self_cuda_time_total before torch 2.4)."""
    return float(getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0)))


def profile(config: CheckConfig, report: Report) -> None:
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    device = device_for(config)
    cuda = device.type == "cuda"
    term = fid_term(config, device)
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    for model in MODELS:
        precision = "bf16" if cuda and model != "unetpp" and config.settings().gan.amp else "fp32"
        with report.guard(f"profile {model}"):
            if model == "unetpp":
                step, _ = seg_step_call(config.seg(), config.size, device, precision)
            else:
                step, _ = gan_step_call(config.gan(precision), model, device, term)
            for _ in range(2 if cuda else 1):
                step()
            synchronize(device)
            started = time.perf_counter()
            with profiler(activities=activities) as recorded:
                for _ in range(config.profile_steps):
                    step()
                synchronize(device)
            wall = (time.perf_counter() - started) / config.profile_steps
            events = list(recorded.key_averages())
            if cuda:
                rows = [e for e in events if getattr(e, "device_type", None) == DeviceType.CUDA and _device_time(e) > 0]
                rows.sort(key=_device_time, reverse=True)
                times = [_device_time(e) for e in rows]
            else:
                rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)
                times = [float(e.self_cpu_time_total) for e in rows]
            total = sum(times)
            if cuda and not rows:
                report.check(f"profile {model}", False, "the profiler recorded no CUDA kernels")
                continue
            report.record("PROFILE", model=model, precision=precision, steps=config.profile_steps, events=(
                "cuda_kernels" if cuda else "cpu_ops"), busy_ms_per_step=round(total / 1e3 / config.profile_steps, 3),
                wall_ms_per_step_profiled=round(1e3 * wall, 3), distinct=len(rows))
            for rank, (event, micros) in enumerate(zip(rows[:15], times[:15]), start=1):
                print(f"{'KERNEL' if cuda else 'OP'} model={model} rank={rank} "
                      f"ms_per_step={micros / 1e3 / config.profile_steps:.4f} share={100 * micros / total:.1f}% "
                      f"calls_per_step={event.count / config.profile_steps:g} name: {event.key[:120]}", flush=True)


# ----------------------------------------------------------------------------------------------------------------------
# (d) peak memory of one process per model, CUDA graphs on


def memory(config: CheckConfig, report: Report, config_path: str) -> None:
    if cuda_device() is None:
        report.skip_all([f"memory {model}" for model in MODELS], f"{NO_CUDA}: reserved GPU memory")
        return
    for model in MODELS:
        result = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check_steps", "memory-one", config_path, model],
                                capture_output=True, text=True, timeout=120)
        print(result.stdout, end="", flush=True)
        if result.returncode != 0:
            report.check(f"memory {model}", False, (result.stderr.strip().splitlines() or ["no output"])[-1][:300])
        else:
            report.statuses.append("ok")


def memory_one(config: CheckConfig, report: Report, model: str) -> None:
    """One model's training step with CUDA graphs (at the paper profile's precision) in this fresh process."""
    device = device_for(config)
    precision = "bf16" if model != "unetpp" and config.settings().gan.amp else "fp32"
    if model == "unetpp":
        step, captured = seg_step_call(config.seg(), config.size, device, precision, cuda_graphs=True)
    else:
        step, captured = gan_step_call(config.gan(precision, graphs=True), model, device, fid_term(config, device))
    for _ in range(untimed_calls(captured, 1) + 10):
        step()
    synchronize(device)
    free, total = torch.cuda.mem_get_info(device)
    problem = "no CUDA graph" if captured is None else captured.problem()
    report.record("MEMORY", model=model, graphs=1, precision=precision, size=config.size, batch=config.batch,
                  peak_reserved_gib=round(torch.cuda.max_memory_reserved(device) / 2**30, 3),
                  peak_allocated_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 3),
                  device_used_gib=round((total - free) / 2**30, 3), graph="ok" if problem is None else "not_used")
    if problem is not None:
        report.check(f"memory {model}", False, f"the graph was not used: {problem}")


# ----------------------------------------------------------------------------------------------------------------------
# (f) the estimate


def estimate(config: CheckConfig, report: Report) -> None:
    from benchmarks.estimate import print_from_results
    from benchmarks.throughput import parse_gpu_results

    results = Path(config.out) / "results.txt"
    parsed = parse_gpu_results(results.read_text())
    for k in config.ks:
        for mps in (False, True):
            if mps and parsed.concurrent_record(k, mps=True) is None:
                continue
            with report.guard(f"estimate {k} per GPU{' MPS' if mps else ''}"):
                total = print_from_results(config.params_graphs, str(results), k, mps)
                report.check(f"estimate {k} per GPU{' MPS' if mps else ''}", True,
                             "total: not every stage kind measured" if total is None else f"total {total / 3600:.2f} h")


STEPS: dict[str, Callable[[CheckConfig, Report], None]] = {
    "setup": setup, "graphs": graphs, "timing": timing, "profile": profile, "estimate": estimate,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    name, config_path, rest = argv[0], argv[1], argv[2:]
    config, report = CheckConfig.load(config_path), Report()
    if name == "memory":
        memory(config, report, config_path)
    elif name == "memory-one":
        memory_one(config, report, rest[0])
    else:
        STEPS[name](config, report)
    return report.exit_status()


if __name__ == "__main__":
    sys.exit(main())
