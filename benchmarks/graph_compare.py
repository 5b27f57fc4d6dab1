"""Whole-step CUDA graphs against eager steps: the GPU check's first item (benchmarks/gpu_check.py) and the CUDA
tests (tests/test_gan.py, tests/test_segmentation.py).

A graph counts as used only if it replayed every call after its eager warm-up (``CapturedStep.problem`` is None): a
capture that failed and fell back to eager steps is a failure here, however close its losses are.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from benchmarks.gpu_check import blob_prepared
from dfgan.core.paths import GanRunPaths
from dfgan.core.settings import Settings, with_values
from dfgan.core.speed import CapturedStep, adam, channels_last_input, learning_rate
from dfgan.gan.config import GanConfig, GanRunOptions
from dfgan.gan.fid import write_reference_stats
from dfgan.gan.pairs import make_inputs
from dfgan.gan.step import FidTerm, GanStep, build_models, fid_term_for
from dfgan.gan.training import train_gan
from dfgan.seg.config import SegConfig

# How far captured may differ from eager beyond the tolerance: this many times the difference between two eager runs
# (kernels with atomics make even those differ, and GAN training amplifies a rounding difference step by step).
FLOOR_FACTOR = 10.0


@dataclass
class GraphComparison:
    """``steps`` steps from the same start, eager twice and captured once, all with the captured step's arithmetic
    (the sync-free FID, capturable Adam), so that only the graph differs. ``differences``: the largest relative
    difference of each loss (and, with scheduler steps, of the learning rate ``lr``) between eager and captured over
    the steps; ``floor``: the same between the two eager runs (the run-to-run noise); ``problem``: why the captured run
    did not replay its graph on every call after the warm-up (None: it did); ``rates``: the captured run's learning
    rate after each scheduler step."""

    steps: int
    differences: dict[str, float]
    floor: dict[str, float]
    problem: str | None
    replays: int
    warmup: int  # the captured run's eager warm-up calls
    rates: list[float] = field(default_factory=list)

    @property
    def used(self) -> bool:
        return self.problem is None and self.replays > 0


def _relative_differences(eager: list[dict[str, float]], captured: list[dict[str, float]]) -> dict[str, float]:
    """The largest relative difference of each value over the steps that have it (``lr``: those after a scheduler
    step)."""
    names = dict.fromkeys(name for values in eager for name in values)
    return {name: max(abs(a[name] - b[name]) / max(abs(a[name]), 1e-12) for a, b in zip(eager, captured) if name in a)
            for name in names}


def _comparison(steps: int, runs: list[list[dict[str, float]]], captured: CapturedStep | None,
                rates: Sequence[float] = ()) -> GraphComparison:
    """From the runs eager, eager again, captured."""
    problem, replays, warmup = ("no CUDA graph was asked for", 0, 0) if captured is None else (
        captured.problem(), captured.replays, captured.warmup)
    return GraphComparison(steps, _relative_differences(runs[0], runs[2]), _relative_differences(runs[0], runs[1]),
                           problem, replays, warmup, list(rates))


def captured_vs_eager_gan(
    settings: Settings, variant: str, device: torch.device, fid_term: FidTerm, steps: int = 6, seed: int = 0,
    scheduler_after: Sequence[int] = (),
) -> GraphComparison:
    """``steps`` GAN steps from the same weights, batches and RNG seed: eager twice, then with ``gan.cuda_graphs``
    (3 eager warm-up steps, the capture, replays). Every run sums the FID's eigenvalue square roots by Newton-Schulz
    (:func:`dfgan.gan.fid.sync_free_fid`, as the graph must; tests/test_gpu_speed.py compares it with the
    eigensolver) and uses capturable Adam. After each step numbered in ``scheduler_after`` (1-based) both
    learning-rate schedulers step, as at an epoch end: a replay must then use the new rate (the capturable Adam reads
    it from a device tensor)."""
    s = GanConfig.of(with_values(settings, {"gan.cuda_graphs": True}), variant, seed=0)
    eager_term = fid_term_for(s, fid_term.extractor, fid_term.fid_loss, device)
    term = FidTerm(eager_term.extractor, eager_term.fid_loss, bool(eager_term.options), sync_free=True)
    data = torch.Generator(device=device).manual_seed(seed + 1)
    batches = []
    for _ in range(steps):
        y = torch.rand(s.batch_size, 1, s.image_size, s.image_size, device=device, generator=data) * 2 - 1
        mask = (torch.rand(y.shape, device=device, generator=data) > 0.8).float()
        batches.append((channels_last_input(make_inputs(y, mask, s.mask_channel)), channels_last_input(y)))
    runs: list[list[dict[str, float]]] = []
    rates: list[float] = []
    for graphs in (False, False, True):
        torch.manual_seed(seed)
        models = build_models(s, device, capturable=True)
        step = GanStep(models, s, term, device, graphs)
        runs.append([])
        rates = []
        for number, (x, y) in enumerate(batches, start=1):
            values = {k: float(v) for k, v in step(x, y).items()}
            if number in scheduler_after:
                models.sched_G.step()
                models.sched_D.step()
                rates.append(learning_rate(models.opt_G))
                values["lr"] = rates[-1]
            runs[-1].append(values)
    return _comparison(steps, runs, step.captured, rates)


def captured_vs_eager_seg(
    config: SegConfig, image_size: int, device: torch.device, steps: int = 6, seed: int = 0
) -> GraphComparison:
    """The same for U-Net++ steps (``seg.cuda_graphs``; its Adam has no scheduler): the loss's difference."""
    from dfgan.seg.fit import eager_step
    from dfgan.seg.model import BceDiceLoss, build_training_model

    data = torch.Generator(device=device).manual_seed(seed + 1)
    batch = config.batch_size
    batches = [((torch.rand(batch, 1, image_size, image_size, device=device, generator=data) * 2 - 1),
                (torch.rand(batch, 1, image_size, image_size, device=device, generator=data) > 0.9).float())
               for _ in range(steps)]
    runs: list[list[dict[str, float]]] = []
    captured: CapturedStep | None = None
    for graphs in (False, False, True):
        torch.manual_seed(seed)
        model = build_training_model(config, device)
        loss_fn = BceDiceLoss(config.bce_weight, config.dice_weight)
        optimizer = adam(model.parameters(), device, True, lr=config.lr)
        step = eager_step(model, loss_fn, optimizer)
        captured = CapturedStep(step, name="seg.cuda_graphs") if graphs else None
        model.train()
        runs.append([{"loss": float((captured or step)(channels_last_input(x), m))} for x, m in batches])
    return _comparison(steps, runs, captured)


def _largest(values: dict[str, float]) -> float:
    return max(values.values(), default=0.0)


def comparison_verdict(comparison: GraphComparison, tolerance: float) -> tuple[bool, str]:
    """Whether a comparison passes, and why in words: the graph replayed every call after its eager warm-up,
    every difference is below ``tolerance`` or ``FLOOR_FACTOR`` times the two eager runs' difference, whichever is
    larger, and, with scheduler steps, each step changed the rate (else the scheduler check compared nothing)."""
    largest = max(comparison.differences.values(), default=math.nan)
    limit = max(tolerance, FLOOR_FACTOR * _largest(comparison.floor))
    warmup = comparison.warmup
    replayed = f"{comparison.replays} of {comparison.steps - warmup} calls after {warmup} eager warm-up steps replayed"
    differences = ", ".join(f"{name} {value:.1e}" for name, value in comparison.differences.items())
    detail = (f"{comparison.steps} steps, {replayed}; largest relative differences to eager: {differences} (eager vs "
              f"eager: {_largest(comparison.floor):.1e}; limit {limit:.1e})")
    rates = comparison.rates
    if rates:
        detail += f"; lr after {len(rates)} scheduler steps: {', '.join(f'{rate:.3g}' for rate in rates)}"
    if comparison.problem is not None:
        return False, f"the graph was not used: {comparison.problem}; {detail}"
    if comparison.replays != comparison.steps - warmup:
        return False, f"the graph did not replay every call: {detail}"
    if not largest < limit:
        return False, f"a difference reaches the limit: {detail}"
    if rates and len(set(rates)) < len(rates):
        return False, f"the scheduler steps left the rate unchanged: {detail}"
    return True, detail


# ----------------------------------------------------------------------------------------------------------------------
# A resume with CUDA graphs on: a train_gan run killed after an epoch and resumed, against an uninterrupted one


@dataclass
class ResumeComparison:
    """A run killed after ``killed_after`` epochs and resumed, against the same run uninterrupted, all with
    ``gan.cuda_graphs``: the largest relative difference of each final metric and of the generator's weights
    (largest absolute difference over the largest absolute weight), the same between two uninterrupted runs
    (``floor``: the run-to-run noise), and whether each run's steps replayed a graph (whole, again, resumed)."""

    epochs: int
    killed_after: int
    resumed_after: int
    differences: dict[str, float]
    floor: dict[str, float]
    graphs: tuple[bool, ...]


def _run_differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """Final metrics and generator weights (``metrics`` and ``weights`` of each run) of two runs, relatively."""
    names = [k for k in a["metrics"] if k.startswith("loss_") or k == "fid_train"]
    differences = {k: abs(a["metrics"][k] - b["metrics"][k]) / max(abs(a["metrics"][k]), 1e-12) for k in names}
    floats = [k for k, w in a["weights"].items() if w.is_floating_point()]
    largest = max(float(a["weights"][k].abs().max()) for k in floats)
    differences["weights"] = max(float((a["weights"][k] - b["weights"][k]).abs().max()) for k in floats) / max(
        largest, 1e-12)
    return differences


def resume_with_graphs(
    settings: Settings, variant: str, device: torch.device, extractor: torch.nn.Module, directory: Path,
    train_images: int = 48, epochs: int = 4,
) -> ResumeComparison:
    """``epochs`` epochs of ``train_gan`` with ``gan.cuda_graphs`` (half of them at a constant rate, then the
    linear decay, so the resumed half starts from a decayed, restored rate) on ``train_images`` blob images:
    uninterrupted twice, and killed after half the epochs then resumed from the checkpoint. With 48 images in
    batches of 16, each epoch is 3 steps: each run captures its graph at its 4th step (the resumed one again after
    the restore) and replays it from then on."""
    shutil.rmtree(directory, ignore_errors=True)  # no checkpoint of an earlier check may be resumed
    half = epochs // 2
    run_settings = with_values(settings, {
        "gan.cuda_graphs": True, "gan.n_epochs": half, "gan.n_epochs_decay": epochs - half,
        "gan.fid_eval_every": epochs, "gan.checkpoint_every": epochs, "gan.checkpoint_minutes": None,
        "gan.keep_checkpoint": False, "runtime.deterministic": False,
    })
    s, options = GanConfig.of(run_settings, variant, 0), GanRunOptions.of(run_settings)
    prepared = blob_prepared(directory / "prepared", s.image_size, train_images, 4, 0.0)
    write_reference_stats(prepared, [train_images], directory / "stats", s.batch_size, device, include_test=False,
                          extractor=extractor, include_flips=s.jitter_flip)
    runs = []
    for name, stops in (("whole", [None]), ("again", [None]), ("resumed", [half, None])):
        paths = GanRunPaths(directory / name / "model", directory / name / "checkpoint.pt", directory / name / "live",
                            directory / name / "metrics.json")
        for stop in stops:
            result = train_gan(prepared, train_images, s, options, paths, stop_after_epoch=stop,
                               stats_path=directory / "stats" / f"train_{train_images}.npz", extractor=extractor)
        runs.append({"metrics": result, "weights": torch.load(paths.out_dir / "generator.pt", map_location="cpu",
                                                              weights_only=True)})
    whole, again, resumed = runs
    return ResumeComparison(epochs, half, int(resumed["metrics"]["resumed_after_epoch"]),
                            _run_differences(whole, resumed), _run_differences(whole, again),
                            tuple(bool(run["metrics"].get("cuda_graphs")) for run in runs))


def resume_verdict(comparison: ResumeComparison, tolerance: float) -> tuple[bool, str]:
    """Whether the resumed run matches the uninterrupted one (within ``tolerance`` or ``FLOOR_FACTOR`` times two
    uninterrupted runs' difference), every run replaying graphs, and why in words."""
    differences = ", ".join(f"{name} {value:.1e}" for name, value in comparison.differences.items())
    limit = max(tolerance, FLOOR_FACTOR * _largest(comparison.floor))
    detail = (f"{comparison.epochs} epochs, killed after {comparison.killed_after}, resumed after "
              f"{comparison.resumed_after}; largest relative differences to the uninterrupted run: {differences} "
              f"(two uninterrupted runs: {_largest(comparison.floor):.1e}; limit {limit:.1e}); graphs used (whole, "
              f"again, resumed): {comparison.graphs}")
    if not all(comparison.graphs):
        return False, f"a run did not replay its steps as a CUDA graph: {detail}"
    if comparison.resumed_after != comparison.killed_after:
        return False, f"the second run did not resume from the checkpoint: {detail}"
    if not _largest(comparison.differences) < limit:
        return False, f"a difference reaches the limit: {detail}"
    return True, detail
