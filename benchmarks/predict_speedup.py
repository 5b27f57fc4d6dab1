"""Predicted wall time and speed-up of the paper profile (params_paper.yaml) on P GPUs, from its step counts.

The model, stated plainly:
- The DAG is the one `dvc dag` reports for params_paper.yaml (read from a temporary copy of the project).
- A stage's work is its number of optimiser steps times the cost of one step, in units of one DF-GAN step at
  256x256, batch 16 (= 1). Step costs are ratios of the forward+backward timings measured on a 2-core CPU
  (shared/README.md: DF-GAN step 6.6 s, pix2pix step 4.1 s, U-Net++ resnet34 at 256 3.7 s per 8 images), assumed to
  carry over to a GPU - or, with ``--from-results FILE`` (a benchmarks/gpu_check.sh results file), the ratios of
  the GPU's own step benchmarks (the paper profile's precision and gan.cuda_graphs), and one unit = that GPU's
  DF-GAN step time. GAN (every variant with an FID loss costs a DF-GAN step): (n_epochs + n_epochs_decay) x ceil(N_train / gan.batch_size) steps, N_train = N less
  its validation images. U-Net++: seeds x rounds x steps per round, the same for every condition under
  seg.schedule: steps (ceil(budget_factor x N_train / batch_size)); one pass over R, R x2, R + S or R + 2S under
  epochs. Forward-only stages (prepare, FID statistics, synthesis, report) count 0:
  they are well under 1 % of the work.
- P identical GPUs, one stage per GPU; the runner's policy (dfgan.orchestrate.dag.simulate_makespan): a stage is
  submitted when its parents are done and the free GPU takes the ready stage with the longest remaining chain. On a first run
  the chain is counted in stages (nothing timed yet); once logs/durations.json holds timings, in seconds.
- Speed-up = total work / predicted wall time. Bounds: wall time >= max(critical path, total work / P).

    python -m benchmarks.predict_speedup                       # P = 1, 2, 4, 8
    python -m benchmarks.predict_speedup --write-durations logs/durations.json   # seed the runner's priorities
    python -m benchmarks.predict_speedup --from-results gpu_check_out/results.txt   # the GPU's measured ratios
"""

from __future__ import annotations

import argparse
import json
import math
import re
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.throughput import gpu_cost_ratios, parse_gpu_results
from dfgan.core.params_file import load_settings
from dfgan.core.settings import Settings
from dfgan.core.splits import validation_count
from dfgan.orchestrate.dag import StageGraph, read_stage_graph, simulate_makespan, stage_priorities
from dfgan.seg.config import SegConfig
from dfgan.seg.fit import make_schedule
from dfgan.seg.training_sets import parse_condition
from tests.pipeline_repo import PROJECT_ROOT, make_pipeline_repo

# One step's cost relative to a DF-GAN step at 256, batch 16 (2-core CPU timings, shared/README.md).
DFGAN_STEP = 6.6
PIX2PIX_STEP = 4.1 / DFGAN_STEP
SEG_STEP_PER_IMAGE = 3.7 / 8 / DFGAN_STEP  # U-Net++ resnet34 at 256: 3.7 s per batch of 8

_MATRIX = re.compile(r"^(?P<kind>[a-z][a-z0-9_]*)@(?P<size>\d+)-(?P<rest>.+)$")


CPU_COSTS = {"pix2pix": PIX2PIX_STEP, "seg_per_image": SEG_STEP_PER_IMAGE}


def stage_cost(name: str, settings: Settings, costs: dict[str, Any] | None = None) -> tuple[str, float]:
    """(kind, work in DF-GAN-step units) of one stage of the paper DAG; ``costs`` (default: the CPU ratios) holds
    ``pix2pix`` (a pix2pix step / a DF-GAN step) and ``seg_per_image`` (a U-Net++ step per image / a DF-GAN step)."""
    costs = costs or CPU_COSTS
    match = _MATRIX.match(name)
    if match is None:
        return name, 0.0
    kind, size, tokens = match["kind"], int(match["size"]), match["rest"].split("-")
    n_train = size - validation_count(size, settings.data.val_fraction)
    if kind == "train_gan":  # train_gan@<size>-<variant>-<seed>
        gan = settings.gan
        steps = (gan.n_epochs + gan.n_epochs_decay) * math.ceil(n_train / gan.batch_size)
        return f"train_gan ({tokens[0]})", steps * (costs["pix2pix"] if tokens[0] == "pix2pix" else 1.0)
    if kind in ("seg_real", "seg_synth", "seg_synth2x"):  # seg_real@<size>-<condition>-<aug>, seg_synth*@<size>-<variant>-<aug>
        seg = SegConfig.of(settings.seg, tokens[-1])
        condition = tokens[0] + ("2x" if kind == "seg_synth2x" else "")
        parsed = parse_condition(condition)
        schedule = make_schedule(seg, n_train)
        images = n_train * (parsed.real_copies + parsed.copies + len(parsed.extra_parts))
        per_round = schedule.steps_per_round or math.ceil(images / seg.batch_size)
        steps = len(seg.seeds) * schedule.rounds * per_round
        return f"{kind} ({condition})", steps * seg.batch_size * costs["seg_per_image"]
    return kind, 0.0


def paper_graph() -> tuple[StageGraph, Settings]:
    settings = load_settings(PROJECT_ROOT / "params_paper.yaml")
    with tempfile.TemporaryDirectory(prefix="paper-dag-") as tmp:
        repo = make_pipeline_repo(Path(tmp) / "repo")
        (repo / "params.yaml").write_text((PROJECT_ROOT / "params_paper.yaml").read_text())
        return read_stage_graph(repo), settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--hours-per-unit", type=float, default=9 / 60 / 250_000,
                        help="hours of one DF-GAN step on one GPU (default: the H100 compute floor, 9 minutes for "
                             "the 250,000 steps of a size-2000 model; real runs take longer, the ratios hold)")
    parser.add_argument("--write-durations", type=Path, default=None,
                        help="write the modelled durations (seconds) where the runner reads them")
    parser.add_argument("--from-results", type=Path, default=None, metavar="FILE",
                        help="a gpu_check results file: its GPU step costs (ratios and the DF-GAN step time as the "
                             "unit) instead of the CPU ratios and --hours-per-unit")
    args = parser.parse_args()
    graph, settings = paper_graph()
    ratios = None
    if args.from_results:
        ratios = gpu_cost_ratios(parse_gpu_results(args.from_results.read_text()), settings.gan.amp,
                                 settings.gan.cuda_graphs)
        if ratios is None:
            print(f"{args.from_results}: no GAN and U-Net++ step benchmarks in it: using the CPU ratios")
        else:
            args.hours_per_unit = ratios["dfgan_seconds"] / 3600
            print(f"step costs from {args.from_results} ({ratios['setting']}): pix2pix {ratios['pix2pix']:.3f}, "
                  f"U-Net++ per image {ratios['seg_per_image']:.4f} DF-GAN steps")
    costs = {name: stage_cost(name, settings, ratios) for name in graph.order}
    work = {name: cost for name, (_, cost) in costs.items()}
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, cost in costs.values():
        by_kind[kind].append(cost)
    total = sum(work.values())
    critical = max(graph.critical_path(work.__getitem__).values())
    hours = args.hours_per_unit
    print(f"paper profile: {len(graph.order)} stages; work in units of one DF-GAN step (256x256, batch 16), "
          f"hours at {hours * 3600 * 1e3:.2f} ms per unit")
    for kind, values in sorted(by_kind.items(), key=lambda item: -sum(item[1])):
        if sum(values):
            print(f"  {kind:<28} {len(values):3d} stages  {sum(values):12,.0f} units  {100 * sum(values) / total:5.1f} %")
    print(f"total work:     {total:12,.0f} units = {total * hours:6.2f} GPU-hours")
    print(f"critical path:  {critical:12,.0f} units = {critical * hours:6.2f} h  (bound on the speed-up: "
          f"{total / critical:.1f}x)")
    seeds = len(settings.seg.seeds)
    per_seed = {name: cost / seeds if kind.startswith("seg_") else cost for name, (kind, cost) in costs.items()}
    split = max(graph.critical_path(per_seed.__getitem__).values())
    print(f"  with each segmentation seed a stage of its own: critical path {split:,.0f} units "
          f"= {split * hours:.2f} h (bound {total / split:.1f}x)")
    first_run = stage_priorities(graph, {})
    timed = stage_priorities(graph, work)
    print(f"{'GPUs':>5} {'bound h':>8} {'first run h':>12} {'speed-up':>9} {'timed h':>8} {'speed-up':>9}")
    for gpus in args.gpus:
        bound = max(critical, total / gpus)
        untimed = simulate_makespan(graph, work.__getitem__, gpus, first_run)
        known = simulate_makespan(graph, work.__getitem__, gpus, timed)
        print(f"{gpus:>5} {bound * hours:8.2f} {untimed * hours:12.2f} {total / untimed:8.2f}x "
              f"{known * hours:8.2f} {total / known:8.2f}x")
    if args.write_durations:
        args.write_durations.parent.mkdir(parents=True, exist_ok=True)
        seconds = {name: round(cost * hours * 3600, 1) for name, cost in work.items()}
        args.write_durations.write_text(json.dumps(seconds, indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.write_durations}")


if __name__ == "__main__":
    main()
