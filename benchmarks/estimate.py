"""Predicted wall time of a params profile on this device, from a few timed steps of each model kind.

    python -m benchmarks.estimate --params params_paper.yaml [--repeats 2]
    python -m benchmarks.estimate --params params_paper.yaml --from-results results.txt [--per-gpu 4] [--mps]

Times one GAN step of each variant, one synthesis batch and one U-Net++ step at the profile's image size, batch
sizes, precision and compile settings (through the code the stages run), multiplies them by the step counts the
profile implies (GAN: epochs x ceil(N_train / batch) per size, variant and GAN seed; synthesis: plain and flipped
lesions; U-Net++: rounds x steps per round per size, condition, augmentation and seed) and prints the time per stage
and in total. Not counted: prepare, the FID statistics, validation, evaluation and the report (minutes at most).

``--from-results FILE`` times nothing: it reads a ``benchmarks/gpu_check.sh`` results file and predicts the profile
on that GPU from its END-TO-END numbers - whole train_gan stage runs (data, logging, FID evaluation and checkpoints
included) and the aggregate steps/s of ``--per-gpu K`` such runs sharing the GPU (``CONCURRENT k=K``; ``--mps``:
the groups run under CUDA MPS); U-Net++ from the step benchmark (:func:`benchmarks.throughput.estimate_from_results`).
Runs on any machine.
"""

from __future__ import annotations

import argparse
import dataclasses

from benchmarks.throughput import (
    device_name, estimate_from_results, parse_gpu_results, planned_work, random_fid_term, time_gan_step,
    time_seg_step, time_synthesis_batch,
)
from dfgan.core.params_file import load_settings
from dfgan.core.runtime import resolve_device
from dfgan.core.speed import configure_determinism
from dfgan.gan.inception import load_inception
from dfgan.seg.config import SegConfig


def hours(seconds: float) -> str:
    return f"{seconds / 3600:8.2f} h" if seconds >= 3600 else f"{seconds / 60:8.1f} min"


def print_from_results(params_path: str, results_path: str, per_gpu: int, mps: bool = False) -> float | None:
    """The profile's table from a results file (see the module docstring); returns the total seconds (None when
    a stage kind has no measurement)."""
    settings = load_settings(params_path)
    results = parse_gpu_results(open(results_path).read())
    estimates = estimate_from_results(settings, results, per_gpu, mps)
    print(f"profile {params_path} from {results_path} ({results.device or 'device not named'}): "
          f"{settings.data.image_size} px, sizes {list(settings.sizes)}, {per_gpu} GAN run(s) at a time per GPU"
          f"{' under CUDA MPS' if mps else ''}")
    print(f"{'stage':<22} {'runs':>5} {'units':>12} {'':<18} {'s/unit':>8} {'predicted':>11}  source")
    total: float | None = 0.0
    for estimate in estimates:
        work, s = estimate.work, estimate.seconds_per_unit
        if s is None or total is None:
            total = None
        else:
            total += s * work.units
        shown = f"{s:>8.4f} {hours(s * work.units):>11}" if s is not None else f"{'-':>8} {'-':>11}"
        print(f"{work.stage:<22} {work.runs:>5} {work.units:>12,} {work.unit:<18} {shown}  {estimate.source}")
    print(f"{'total (one GPU)':<22} {'':>5} {'':>12} {'':<18} {'':>8} "
          f"{hours(total) if total is not None else '-':>11}")
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--repeats", type=int, default=2, help="timed steps of each kind (after one warm-up)")
    parser.add_argument("--from-results", default=None, metavar="FILE",
                        help="predict from a gpu_check results file's end-to-end numbers instead of timing steps")
    parser.add_argument("--per-gpu", type=int, default=1, metavar="K",
                        help="with --from-results: GAN stages sharing one GPU (a CONCURRENT k=K record)")
    parser.add_argument("--mps", action="store_true", help="with --from-results: the K stages ran under CUDA MPS")
    args = parser.parse_args(argv)
    if args.from_results:
        print_from_results(args.params, args.from_results, args.per_gpu, args.mps)
        return

    settings = load_settings(args.params)
    configure_determinism(settings.runtime.deterministic)
    device = resolve_device(settings.gan.device)
    size = settings.data.image_size
    extractor = load_inception(device, settings.fid.inception_path)
    # Timing only: random weights, nothing to download.
    seg = dataclasses.replace(SegConfig.of(settings.seg, "none"), encoder_weights=None)

    print(f"profile {args.params} on {device_name(device)}: {size} px, sizes {list(settings.sizes)}")
    fid_term = random_fid_term(extractor, device)
    per_unit = {
        f"train_gan ({variant})": time_gan_step(settings, variant, device, fid_term, args.repeats)
        for variant in settings.variants
    }
    per_unit["synthesize"] = time_synthesis_batch(settings, device, extractor, args.repeats)
    per_unit["seg (all conditions)"] = time_seg_step(seg, size, device, args.repeats)
    print(f"{'stage':<22} {'runs':>5} {'units':>12} {'':<18} {'s/unit':>8} {'predicted':>11}")
    total = 0.0
    for work in planned_work(settings):
        seconds = per_unit[work.stage] * work.units
        total += seconds
        print(f"{work.stage:<22} {work.runs:>5} {work.units:>12,} {work.unit:<18} {per_unit[work.stage]:>8.3f} "
              f"{hours(seconds):>11}")
    print(f"{'total':<22} {'':>5} {'':>12} {'':<18} {'':>8} {hours(total):>11}")


if __name__ == "__main__":
    main()
