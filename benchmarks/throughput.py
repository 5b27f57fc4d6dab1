"""Timed steps of each model kind, through the code the stages run, and the step counts a params profile implies.

The benchmarks (``benchmarks/bench_gan_step.py``, ``bench_seg_step.py``) and the wall-time estimate
(``benchmarks/estimate.py``) are thin command lines over this module; the tests run it at the paper's shapes.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from dfgan.core.settings import Settings, gan_seeds_at, seg_seeds_at, with_values
from dfgan.core.speed import CapturedStep, adam, channels_last_input
from dfgan.core.splits import validation_count
from dfgan.gan.config import GanConfig
from dfgan.gan.fid import FIDLoss
from dfgan.gan.inception import FEATURE_DIM
from dfgan.gan.generator import generate
from dfgan.gan.pairs import make_inputs
from dfgan.gan.step import FidTerm, GanStep, build_models, fid_term_for, gan_cuda_graphs
from dfgan.seg.config import SegConfig
from dfgan.seg.training_sets import parse_condition, trained_conditions

# dfgan.seg.fit and dfgan.seg.model import segmentation-models-pytorch: they are imported where a U-Net++ is built or
# scheduled, so that the GAN timings run on a machine without it (a bare GPU machine, benchmarks/gpu_check.py).

PRECISIONS = ("fp32", "bf16")


def device_name(device: torch.device) -> str:
    """The device as a benchmark reports it, with the torch version."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"cpu, {torch.get_num_threads()} threads, torch {torch.__version__}"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(step: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``step`` over ``repeats`` calls after ``warmup`` untimed ones (allocation, autotuning,
    compilation)."""
    for _ in range(warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass(frozen=True)
class StepTimes:
    """Steady-state times of ``steps`` consecutive calls: ``per_step_ms`` is the whole run's time over ``steps``
    (throughput), ``median_ms`` the median of the single calls; ``timer``: ``cuda_events`` (CUDA events recorded
    around every call on the current stream, no host sync between calls) or ``wall`` (a CPU: perf_counter)."""

    steps: int
    per_step_ms: float
    median_ms: float
    timer: str


def event_times(step: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> StepTimes:
    """Times ``repeats`` calls of ``step`` after ``warmup`` untimed ones, by CUDA events on a GPU (so the host may run
    ahead, as in training), by the wall clock elsewhere."""
    for _ in range(warmup):
        step()
    synchronize(device)
    if device.type != "cuda":
        times, started = [], time.perf_counter()
        for _ in range(repeats):
            begin = time.perf_counter()
            step()
            times.append(time.perf_counter() - begin)
        total = time.perf_counter() - started
        return StepTimes(repeats, 1e3 * total / repeats, 1e3 * statistics.median(times), "wall")
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
    for begin, end in events:
        begin.record()
        step()
        end.record()
    torch.cuda.synchronize(device)
    single = [begin.elapsed_time(end) for begin, end in events]
    total = events[0][0].elapsed_time(events[-1][1])
    return StepTimes(repeats, total / repeats, statistics.median(single), "cuda_events")


def random_fid_term(extractor: torch.nn.Module, device: torch.device, seed: int = 0) -> FidTerm:
    """The FID loss against fixed feature-like real statistics (non-negative, correlated): a step's cost does not
    depend on which real statistics it fits."""
    rng = np.random.default_rng(seed)
    real = np.abs(rng.normal(size=(FEATURE_DIM + 64, FEATURE_DIM))).astype(np.float32) * 0.4
    return FidTerm(extractor, FIDLoss(real.mean(0), np.cov(real, rowvar=False)).to(device))


def gan_settings_for(
    settings: Settings, image_size: int, batch: int, precision: str, compile_mode: str,
    inception_bf16: bool = False, cuda_graphs: bool = False,
) -> Settings:
    """``settings`` with the image size, batch, precision (fp32 | bf16 autocast), compile mode, the FID loss's
    Inception precision (``gan.inception_bf16``, effective with bf16 on CUDA) and ``gan.cuda_graphs`` set."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got '{precision}'")
    return with_values(settings, {
        "data.image_size": image_size, "gan.batch_size": batch, "gan.amp": precision == "bf16",
        "gan.amp_dtype": "bfloat16", "gan.compile": compile_mode, "gan.inception_bf16": inception_bf16,
        "gan.cuda_graphs": cuda_graphs,
    })


def gan_step_call(
    settings: Settings, variant: str, device: torch.device, fid_term: FidTerm
) -> tuple[Callable[[], Any], CapturedStep | None]:
    """One GAN variant's training step (D then G update) on a fixed batch, as ``train_gan`` runs it (``fid_term``'s
    extractor and statistics, with the Inception precision of the params; ``gan.cuda_graphs``: replayed as a CUDA
    graph after its eager warm-up steps), and its :class:`CapturedStep` (None when eager)."""
    s = GanConfig.of(settings, variant, seed=0)
    fid_term = fid_term_for(s, fid_term.extractor, fid_term.fid_loss, device)
    torch.manual_seed(0)
    graphs = gan_cuda_graphs(s, device)
    models = build_models(s, device, capturable=graphs)
    y = torch.rand(s.batch_size, 1, s.image_size, s.image_size, device=device) * 2 - 1
    x = channels_last_input(make_inputs(y, (torch.rand_like(y) > 0.9).float(), s.mask_channel))
    y = channels_last_input(y)
    step = GanStep(models, s, fid_term, device, graphs)
    return (lambda: step(x, y)), step.captured


def untimed_calls(captured: CapturedStep | None, warmup: int) -> int:
    """Calls before timing: ``warmup``, and for a CUDA graph at least its eager warm-up calls, the capture and one
    replay."""
    return warmup if captured is None else max(warmup, captured.warmup + 2)


def time_gan_step(
    settings: Settings, variant: str, device: torch.device, fid_term: FidTerm, repeats: int, warmup: int = 1
) -> float:
    """Median seconds per training step of :func:`gan_step_call` (a CUDA graph's warm-up steps and capture are not
    timed)."""
    step, captured = gan_step_call(settings, variant, device, fid_term)
    return median_seconds(step, device, repeats, untimed_calls(captured, warmup))


def time_synthesis_batch(
    settings: Settings, device: torch.device, extractor: torch.nn.Module, repeats: int, warmup: int = 1
) -> float:
    """Seconds for one synthesis batch: G on ``gan.batch_size`` inputs in train mode, then their Inception features
    (what the synthesize stage does per batch, FID/KID included)."""
    s = GanConfig.of(settings, "dfgan", seed=0)
    generator = build_models(s, device).generator
    y = torch.rand(s.batch_size, 1, s.image_size, s.image_size) * 2 - 1
    x = make_inputs(y, (torch.rand_like(y) > 0.9).float(), s.mask_channel)

    def batch() -> None:
        fake = generate(generator, x, s.batch_size, True, device)
        with torch.no_grad():
            extractor(fake.to(device))

    return median_seconds(batch, device, repeats, warmup)


def seg_step_call(
    config: SegConfig, image_size: int, device: torch.device, precision: str = "fp32", cuda_graphs: bool = False
) -> tuple[Callable[[], Any], CapturedStep | None]:
    """One U-Net++ optimizer step at ``seg.batch_size`` (model, loss and optimizer as ``fit`` builds them), on a
    batch already on the device (as training keeps it with ``seg.augment_on: device``), and its
    :class:`CapturedStep` (None when eager).

    ``bf16`` wraps the step in CUDA autocast (measured only; training itself runs in float32). ``cuda_graphs``
    (CUDA only): the step replayed as one CUDA graph, as ``seg.cuda_graphs`` trains."""
    from dfgan.seg.fit import eager_step, train_batches
    from dfgan.seg.model import BceDiceLoss, build_training_model

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got '{precision}'")
    torch.manual_seed(0)
    graphs = cuda_graphs and device.type == "cuda"
    model = build_training_model(config, device)
    loss_fn = BceDiceLoss(config.bce_weight, config.dice_weight)
    optimizer = adam(model.parameters(), device, graphs, lr=config.lr)
    captured = CapturedStep(eager_step(model, loss_fn, optimizer), name="seg.cuda_graphs") if graphs else None
    batch = config.batch_size
    images = (torch.rand(batch, 1, image_size, image_size) * 2 - 1).to(device)
    masks = (torch.rand(batch, 1, image_size, image_size) > 0.9).float().to(device)
    use_bf16 = precision == "bf16" and device.type == "cuda"

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16, cache_enabled=not graphs):
            train_batches(model, iter([(images, masks)]), loss_fn, optimizer, device, step=captured)

    return step, captured


def time_seg_step(
    config: SegConfig, image_size: int, device: torch.device, repeats: int, precision: str = "fp32",
    warmup: int = 1, cuda_graphs: bool = False,
) -> float:
    """Median seconds per U-Net++ optimizer step of :func:`seg_step_call`."""
    step, captured = seg_step_call(config, image_size, device, precision, cuda_graphs)
    return median_seconds(step, device, repeats, untimed_calls(captured, warmup))


# ----------------------------------------------------------------------------------------------------------------------
# What a profile asks for


@dataclass(frozen=True)
class PlannedWork:
    """Counts of one stage kind over the whole profile: ``units`` of ``unit`` (GAN steps, synthesis batches, ...)."""

    stage: str
    unit: str
    units: int
    runs: int  # DVC stage runs (matrix items) it is spread over


def training_images(settings: Settings, size: int) -> int:
    """The images a size trains on (its pool less the fixed validation images)."""
    return size - validation_count(size, settings.data.val_fraction)


@dataclass(frozen=True)
class SizeWork:
    """The work of one training size, per model: a GAN's steps and synthesis batches (one variant, one seed), and one
    U-Net++ seed's steps over every condition and both augmentation settings (the budget: early stopping runs
    fewer)."""

    gan_steps: int
    synth_batches: int
    seg_steps: int


def size_work(settings: Settings, size: int) -> SizeWork:
    from dfgan.seg.fit import make_schedule

    gan, seg = settings.gan, SegConfig.of(settings.seg, "none")  # the schedule is the same for every aug
    n_train = training_images(settings, size)
    schedule = make_schedule(seg, n_train)
    seg_steps = 0
    for condition in trained_conditions(settings):
        parsed = parse_condition(condition)
        n_condition = n_train * (parsed.real_copies + parsed.copies + len(parsed.extra_parts))
        per_round = schedule.steps_per_round or math.ceil(n_condition / schedule.batch_size)
        seg_steps += schedule.rounds * per_round * 2  # aug: none and classic
    batches = math.ceil(n_train / gan.batch_size)
    return SizeWork((gan.n_epochs + gan.n_epochs_decay) * batches, 2 * batches, seg_steps)


def planned_work(settings: Settings) -> list[PlannedWork]:
    """Step counts the profile implies (:func:`size_work` times the models of each size: every variant and GAN seed
    of the size, its U-Net++ seeds; ``gan.extra_seeds`` at ``gan.extra_sizes`` included)."""
    variants = settings.variants
    gan_steps_per_variant = synth_batches = seg_steps = runs = 0
    for size in settings.sizes:
        work, n_gans = size_work(settings, size), len(gan_seeds_at(settings, size))
        gan_steps_per_variant += work.gan_steps * n_gans
        synth_batches += work.synth_batches * len(variants) * n_gans
        seg_steps += work.seg_steps * len(seg_seeds_at(settings, size))
        runs += len(variants) * n_gans
    seg_runs = len(settings.sizes) * len(trained_conditions(settings)) * 2
    return [
        *[PlannedWork(f"train_gan ({v})", "GAN steps", gan_steps_per_variant, runs // len(variants)) for v in variants],
        PlannedWork("synthesize", "synthesis batches", synth_batches, runs),
        PlannedWork("seg (all conditions)", "U-Net++ steps", seg_steps, seg_runs),
    ]


# ----------------------------------------------------------------------------------------------------------------------
# A GPU check's results file (benchmarks/gpu_check.sh writes results.txt): what the estimates read back

_SECTION = re.compile(r"^=== (?P<name>.+?)(?: \(at \d+ s, limit \d+ s\))?(?::.*)?$")
_GAN_ROW = re.compile(r"^(?P<setting>\S+)\s+(?P<size>\d+)\s+(?P<variant>[a-z][a-z0-9_]*)\s+(?P<s>\d+\.\d+)\s+\d+\.\d+\s+\d+\.\d+")
_SEG_ROW = re.compile(r"^(?P<setting>\S+)\s+(?P<size>\d+)\s+(?P<s>\d+\.\d+)\s+\d+\.\d+\s+\d+\.\d+\s*$")
_BATCH = re.compile(r"\bbatch (?P<batch>\d+)")
_SYNTH_ROW = re.compile(r"^synthesize\s+\d+\s+[\d,]+\s+synthesis batches\s+(?P<s>\d+\.\d+)")
_RECORD = re.compile(r"^(?P<kind>E2E|CONCURRENT|TIME)\s+(?P<fields>(?:\S+=\S+\s*)+)$")
# A TIME record's (mode, precision) as a U-Net++ step-benchmark setting.
_SEG_SETTING = {("eager", "fp32"): "fp32", ("eager", "bf16"): "bf16", ("graphs", "fp32"): "graphs",
                ("graphs", "bf16"): "graphs-bf16"}


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass
class GpuResults:
    """What a results file measured. ``gan_step``: (setting, variant) -> seconds per step (bench_gan_step, at its
    largest size); ``seg_step``: setting -> seconds per step (bench_seg_step); ``e2e``: the ``E2E`` records (one
    whole train_gan stage run each: variant, amp, graphs, steps, seconds, steps_per_s, ...); ``concurrent``: the
    ``CONCURRENT`` records (k runs at once on one GPU: aggregate_steps_per_s, ...; ``mps=1``: under CUDA MPS).
    ``TIME`` records (benchmarks/gpu_check.py: steady-state step times) fill ``gan_step`` (pix2pix, dfgan),
    ``seg_step`` (unetpp) and ``synthesis_s_per_batch``, from their ``per_step_ms``."""

    device: str = ""
    gan_batch: int | None = None
    seg_batch: int | None = None
    gan_step: dict[tuple[str, str], float] = field(default_factory=dict)
    seg_step: dict[str, float] = field(default_factory=dict)
    e2e: list[dict[str, Any]] = field(default_factory=list)
    concurrent: list[dict[str, Any]] = field(default_factory=list)
    synthesis_s_per_batch: float | None = None

    def e2e_rate(self, variant: str, amp: bool | None = None, graphs: bool | None = None) -> float | None:
        """Steps/s of the E2E run of ``variant`` with these options (None: any; the fastest then)."""
        rates = [r["steps_per_s"] for r in self.e2e if r.get("variant") == variant and "steps_per_s" in r
                 and (amp is None or bool(r.get("amp")) == amp) and (graphs is None or bool(r.get("graphs")) == graphs)]
        return max(rates) if rates else None

    def concurrent_record(self, k: int, mps: bool = False) -> dict[str, Any] | None:
        """The last ``CONCURRENT k=K`` record, run with CUDA MPS or without (a record without ``mps``: without)."""
        records = [r for r in self.concurrent if r.get("k") == k and "aggregate_steps_per_s" in r
                   and bool(r.get("mps", 0)) == mps]
        return records[-1] if records else None

    def add_time(self, record: dict[str, Any]) -> None:
        """A ``TIME`` record: model (pix2pix | dfgan | unetpp | synthesis | ...), mode (eager | graphs | ...),
        precision (fp32 | bf16), batch, per_step_ms, ..."""
        seconds, model = float(record["per_step_ms"]) / 1000, record.get("model")
        mode, precision = record.get("mode"), record.get("precision")
        if model in ("pix2pix", "dfgan") and mode in ("eager", "graphs"):
            self.gan_step[(gan_step_setting(precision == "bf16", mode == "graphs"), model)] = seconds
            self.gan_batch = record.get("batch", self.gan_batch)
        elif model == "unetpp" and (mode, precision) in _SEG_SETTING:
            self.seg_step[_SEG_SETTING[(mode, precision)]] = seconds
            self.seg_batch = record.get("batch", self.seg_batch)
        elif model == "synthesis":
            self.synthesis_s_per_batch = seconds


def parse_gpu_results(text: str) -> GpuResults:
    """Read a gpu_check results file (or any text with its sections and records; unknown lines are skipped)."""
    results = GpuResults()
    section = ""
    sizes: dict[tuple[str, str], int] = {}
    for line in text.splitlines():
        line = line.rstrip()
        header = _SECTION.match(line)
        if header:
            section = header["name"]
            continue
        if line.startswith("device ") and not results.device:
            results.device = line[len("device "):]
        record = _RECORD.match(line)
        if record:
            fields = {key: _number(value) for key, value in
                      (item.split("=", 1) for item in record["fields"].split())}
            if record["kind"] == "TIME":
                results.add_time(fields)
            else:
                (results.e2e if record["kind"] == "E2E" else results.concurrent).append(fields)
            continue
        if section.startswith("GAN step benchmark"):
            if line.startswith("device:") and _BATCH.search(line):
                results.gan_batch = int(_BATCH.search(line)["batch"])
            row = _GAN_ROW.match(line)
            if row:
                key, size = (row["setting"], row["variant"]), int(row["size"])
                if size >= sizes.get(key, 0):
                    sizes[key], results.gan_step[key] = size, float(row["s"])
        elif section.startswith("U-Net++ step benchmark"):
            if line.startswith("device:") and _BATCH.search(line):
                results.seg_batch = int(_BATCH.search(line)["batch"])
            row = _SEG_ROW.match(line)
            if row:
                results.seg_step[row["setting"]] = float(row["s"])
        elif section.startswith("paper-profile estimate"):
            row = _SYNTH_ROW.match(line)
            if row:
                results.synthesis_s_per_batch = float(row["s"])
    return results


def gan_step_setting(amp: bool, graphs: bool) -> str:
    """The bench_gan_step setting of these options."""
    return ("graphs" if amp else "graphs-fp32") if graphs else ("bf16" if amp else "fp32")


@dataclass(frozen=True)
class Estimated:
    """One stage kind of a profile: ``units`` at ``seconds_per_unit`` on one GPU (with ``per_gpu`` runs sharing
    it), ``source`` saying which measurement gave the rate."""

    work: PlannedWork
    seconds_per_unit: float | None
    source: str

    @property
    def seconds(self) -> float | None:
        return None if self.seconds_per_unit is None else self.seconds_per_unit * self.work.units


def estimate_from_results(
    settings: Settings, results: GpuResults, per_gpu: int = 1, mps: bool = False
) -> list[Estimated]:
    """The profile's wall time on one GPU from a results file's end-to-end numbers, ``per_gpu`` runs at a time.

    GAN (variants with an FID loss cost a DF-GAN step; pix2pix its own): for one run per GPU the ``E2E`` run at the
    profile's ``gan.amp`` and ``gan.cuda_graphs`` (else ``CONCURRENT k=1``); for ``per_gpu`` K > 1 the aggregate
    steps/s of K concurrent DF-GAN train_gan stages (``CONCURRENT k=K``), scaled by the E2E rates when those ran at
    other options; all include data, logging, FID evaluation and checkpoints. pix2pix: scaled by its E2E rate
    relative to DF-GAN's (else the step benchmark's ratio). U-Net++: the step benchmark at the profile's
    ``seg.cuda_graphs`` (no concurrency measured: one run at a time). Synthesis: the results' estimate row or
    ``TIME`` record, if any. ``mps``: the concurrent records measured under CUDA MPS.
    """
    amp, graphs = settings.gan.amp, settings.gan.cuda_graphs
    concurrent = results.concurrent_record(per_gpu, mps)
    single = results.e2e_rate("dfgan", amp, graphs)
    dfgan_rate, dfgan_source = None, ""
    if per_gpu == 1 and single is not None:
        dfgan_rate, dfgan_source = single, f"train_gan run (amp {int(amp)}, graphs {int(graphs)})"
    elif concurrent is not None:
        dfgan_rate = float(concurrent["aggregate_steps_per_s"])
        measured = (bool(concurrent.get("amp")), bool(concurrent.get("graphs")))
        dfgan_source = (f"{per_gpu} concurrent train_gan {concurrent.get('variant', 'dfgan')} (amp {int(measured[0])}, "
                        f"graphs {int(measured[1])}{', MPS' if mps else ''})")
        at_measured = results.e2e_rate("dfgan", *measured)
        if measured != (amp, graphs) and single is not None and at_measured is not None:
            # The concurrency gain measured at other options, applied to the profile's options' single-run rate.
            dfgan_rate *= single / at_measured
            dfgan_source += f" x {single / at_measured:.2f} (train_gan runs, amp {int(amp)} graphs {int(graphs)})"
    setting = gan_step_setting(amp, graphs)
    estimates: list[Estimated] = []
    for work in planned_work(settings):
        if work.stage.startswith("train_gan"):
            variant = work.stage[len("train_gan ("):-1]
            if dfgan_rate is None:
                estimates.append(Estimated(work, None, f"no CONCURRENT k={per_gpu}{' mps=1' if mps else ''} record"))
                continue
            if variant != "pix2pix":
                estimates.append(Estimated(work, 1.0 / dfgan_rate, dfgan_source))
                continue
            e2e_p2p, e2e_df = results.e2e_rate("pix2pix", amp, graphs), results.e2e_rate("dfgan", amp, graphs)
            step_p2p, step_df = results.gan_step.get((setting, "pix2pix")), results.gan_step.get((setting, "dfgan"))
            if e2e_p2p and e2e_df:
                ratio, how = e2e_df / e2e_p2p, "train_gan runs"
            elif step_p2p and step_df:
                ratio, how = step_p2p / step_df, f"step benchmark {setting}"
            else:
                estimates.append(Estimated(work, None, "no pix2pix measurement"))
                continue
            estimates.append(Estimated(work, ratio / dfgan_rate, f"{dfgan_source} x pix2pix/dfgan {ratio:.2f} ({how})"))
        elif work.stage == "synthesize":
            s = results.synthesis_s_per_batch
            estimates.append(Estimated(work, s, "results' estimate" if s is not None else "not measured (minutes)"))
        else:
            seg_setting = "graphs" if settings.seg.cuda_graphs else "fp32"
            s = results.seg_step.get(seg_setting, results.seg_step.get("fp32"))
            used = seg_setting if seg_setting in results.seg_step else "fp32"
            estimates.append(Estimated(work, s, f"U-Net++ step benchmark {used}, one run at a time"
                                       if s is not None else "no U-Net++ step benchmark"))
    return estimates


def gpu_cost_ratios(results: GpuResults, amp: bool = True, graphs: bool = False) -> dict[str, Any] | None:
    """Step costs relative to a DF-GAN step, from the step benchmarks of a results file (the setting of ``amp``
    and ``graphs``, else fp32): ``pix2pix`` (per step), ``seg_per_image`` (a U-Net++ step per image) and
    ``dfgan_seconds``; None when the file lacks them."""
    for setting in (gan_step_setting(amp, graphs), "fp32"):
        dfgan, pix2pix = results.gan_step.get((setting, "dfgan")), results.gan_step.get((setting, "pix2pix"))
        seg = results.seg_step.get("graphs" if graphs else "fp32", results.seg_step.get("fp32"))
        if dfgan and pix2pix and seg and results.seg_batch:
            return {"pix2pix": pix2pix / dfgan, "seg_per_image": seg / results.seg_batch / dfgan,
                    "dfgan_seconds": dfgan, "setting": setting}
    return None
