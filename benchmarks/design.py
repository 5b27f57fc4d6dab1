"""Plan a profile's GAN and U-Net++ seeds per size from a pilot run, for a target MDE, with its GPU- and CPU-hours.

    python -m benchmarks.design --pilot docs/evidence/phantom-64px-50-100-v2 --params params_paper.yaml \\
        --target 0.05 [--sizes 50 100] [--results benchmarks/gpu_runs/2026-11-26-h200-results.txt] [--cpu]

The pilot is any finished run with its params, ``metrics/seg`` and ``per_image`` (a committed evidence run, or a
workspace: ``--pilot .``). Its variance terms (:mod:`dfgan.report.design`) of the primary contrast give, for each
size of the profile (a size the pilot lacks takes the nearest pilot size's terms, and says so), the MDE at 80% power
(``report.power``) at the primary family's level (alpha / the number of declared sizes, ``report.primary_sizes``)
of the profile's own design and of the cheapest design that reaches ``--target``: GAN seeds G and U-Net++ seeds per
GAN k, with the test images of the profile's ``data.test_size``. Costs come from the step model of
``benchmarks.estimate`` (:func:`benchmarks.throughput.size_work`): per-step seconds from a GPU check's results file
(one GPU, one run at a time) and, with ``--cpu``, from timing each step kind on this CPU at the profile's settings
(slow at 256 px: a minute or two). U-Net++ costs count the whole round budget (early stopping runs fewer).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from benchmarks.throughput import (
    estimate_from_results, gan_step_setting, parse_gpu_results, random_fid_term, size_work, time_gan_step,
    time_seg_step, time_synthesis_batch,
)
from dfgan.core.params_file import load_settings
from dfgan.core.runtime import resolve_device
from dfgan.core.settings import Settings, gan_seeds_at, seg_seeds_at
from dfgan.report.build import ReportConfig, load_per_image_dice, load_seg_metrics
from dfgan.report.contrasts import declared_sizes, primary_condition
from dfgan.report.design import VarianceTerms, design_mde, plan_design, run_terms
from dfgan.seg.config import SegConfig

DEFAULT_PILOT = Path("docs/evidence/phantom-64px-50-100-v2")
DEFAULT_RESULTS = Path("benchmarks/gpu_runs/2026-11-26-h200-results.txt")


@dataclasses.dataclass(frozen=True)
class StepSeconds:
    """Seconds per GAN step (by variant), per synthesis batch and per U-Net++ step on one device."""

    gan: dict[str, float]
    synth: float
    seg: float
    source: str


def gpu_seconds(settings: Settings, results_path: Path) -> StepSeconds:
    """Per-unit seconds of the profile on the GPU of a results file (one run at a time): the whole-stage rates of
    ``benchmarks.estimate --from-results`` where the file has them, else the GAN step benchmark at the profile's
    precision and graphs setting (a step alone, without data loading, FID evaluation or checkpoints)."""
    results = parse_gpu_results(results_path.read_text())
    rates = {e.work.stage: e.seconds_per_unit for e in estimate_from_results(settings, results, 1)}
    setting = gan_step_setting(settings.gan.amp, settings.gan.cuda_graphs)
    source = results.device or str(results_path)
    gan = {}
    for variant in settings.variants:
        rate = rates[f"train_gan ({variant})"]
        if rate is None:
            kind = "pix2pix" if variant == "pix2pix" else "dfgan"
            rate = results.gan_step.get((setting, kind)) or results.gan_step.get(("fp32", kind))
            source += f", {variant}: GAN step benchmark"
        gan[variant] = rate
    missing = [name for name, rate in [*gan.items(), ("synthesize", rates["synthesize"]),
                                       ("seg", rates["seg (all conditions)"])] if rate is None]
    if missing:
        raise SystemExit(f"{results_path}: no measurement for {', '.join(missing)}")
    return StepSeconds(gan, rates["synthesize"], rates["seg (all conditions)"], source)


def cpu_seconds(settings: Settings) -> StepSeconds:
    """Per-unit seconds timed on this machine's CPU at the profile's settings (one repeat after a warm-up)."""
    from dfgan.gan.inception import load_inception

    device = resolve_device("cpu")
    extractor = load_inception(device, settings.fid.inception_path)
    fid_term = random_fid_term(extractor, device)
    gan = {variant: time_gan_step(settings, variant, device, fid_term, 1) for variant in settings.variants}
    seg = dataclasses.replace(SegConfig.of(settings.seg, "none"), encoder_weights=None)
    return StepSeconds(gan, time_synthesis_batch(settings, device, extractor, 1),
                       time_seg_step(seg, settings.data.image_size, device, 1), "this CPU")


def size_hours(settings: Settings, size: int, steps: StepSeconds, n_gans: int, per_gan: int) -> float:
    """Hours of one size with n_gans GAN seeds and per_gan U-Net++ seeds per GAN on one device."""
    work = size_work(settings, size)
    gan = sum(work.gan_steps * steps.gan[v] for v in settings.variants) * n_gans
    synth = work.synth_batches * len(settings.variants) * n_gans * steps.synth
    return (gan + synth + work.seg_steps * n_gans * per_gan * steps.seg) / 3600


def pilot_terms_by_size(pilot: Path, primary: str) -> dict[int, VarianceTerms]:
    config = ReportConfig.of(load_settings(pilot / "params.yaml"))
    per_image = load_per_image_dice(pilot / "per_image" if (pilot / "per_image").is_dir() else pilot / "data/seg",
                                    config.sizes, config.conditions)
    results = load_seg_metrics(pilot / "metrics/seg", config.sizes, config.conditions)
    variant, aug = primary_condition(primary)
    return {size: run_terms(per_image, results, size, variant, aug, f"{pilot.as_posix()} N={size}")
            for size in config.sizes}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pilot", type=Path, default=DEFAULT_PILOT, help="a finished run (default: %(default)s)")
    parser.add_argument("--params", default="params_paper.yaml", help="the profile to plan (default: %(default)s)")
    parser.add_argument("--target", type=float, default=0.05, help="MDE to reach, Dice (default: %(default)s)")
    parser.add_argument("--sizes", type=int, nargs="*", default=None,
                        help="sizes to plan (default: the profile's report.primary_sizes, else every size)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="GPU check results for GPU-hours")
    parser.add_argument("--cpu", action="store_true", help="also time the steps on this CPU for CPU-hours")
    parser.add_argument("--max-gans", type=int, default=48)
    args = parser.parse_args(argv)

    settings = load_settings(args.params)
    report = settings.report
    declared = declared_sizes(report, settings.sizes)
    alpha = (1.0 - report.level) / len(declared)
    terms = pilot_terms_by_size(args.pilot, report.primary)
    n_images = settings.data.test_size
    gpu = gpu_seconds(settings, args.results)
    cpu = cpu_seconds(settings) if args.cpu else None
    planned = args.sizes if args.sizes is not None else declared
    print(f"pilot {args.pilot.as_posix()}; profile {args.params}: primary {report.primary} at sizes {declared}, MDE "
          f"at {report.power:.0%} power and alpha {alpha:.4g} (alpha / {len(declared)}), {n_images} test images; "
          f"GPU-hours from {gpu.source}{'; CPU-hours timed on this CPU' if cpu else ''}")
    header = (f"{'size':>5} {'pilot':>6} {'now G x k':>10} {'MDE now':>8} {'plan G x k':>11} {'MDE plan':>9} "
              f"{'GPU-h now':>10} {'GPU-h plan':>11}" + (f" {'CPU-h plan':>11}" if cpu else ""))
    print(header)
    totals = [0.0, 0.0, 0.0]
    for size in settings.sizes:
        pilot_size = min(terms, key=lambda s: (abs(s - size), s))
        n_gans = len(gan_seeds_at(settings, size))
        per_gan = max(1, len(seg_seeds_at(settings, size)) // n_gans)
        now_mde = design_mde(terms[pilot_size], n_gans, per_gan, n_images, alpha, report.power)
        now_hours = size_hours(settings, size, gpu, n_gans, per_gan)
        if size in planned:
            plan = plan_design(terms[pilot_size], args.target, n_images, alpha,
                               lambda g, k: size_hours(settings, size, gpu, g, k), report.power, args.max_gans)
            design = (plan.n_gans, plan.seeds_per_gan)
            shown = f"{plan.n_gans:>3} x {plan.seeds_per_gan}" + ("" if plan.reached else "*")
            plan_mde = plan.mde
        else:
            design, shown, plan_mde = (n_gans, per_gan), f"{n_gans:>3} x {per_gan} =", now_mde
        plan_hours = size_hours(settings, size, gpu, *design)
        cpu_hours = size_hours(settings, size, cpu, *design) if cpu else 0.0
        totals = [totals[0] + now_hours, totals[1] + plan_hours, totals[2] + cpu_hours]
        pilot_text = f"{pilot_size}" + ("" if pilot_size == size else "~")
        print(f"{size:>5} {pilot_text:>6} {n_gans:>6} x {per_gan} {now_mde:>8.3f} {shown:>11} {plan_mde:>9.3f} "
              f"{now_hours:>10.2f} {plan_hours:>11.2f}" + (f" {cpu_hours:>11.1f}" if cpu else ""))
    print(f"{'total':>5} {'':>6} {'':>10} {'':>8} {'':>11} {'':>9} {totals[0]:>10.2f} {totals[1]:>11.2f}"
          + (f" {totals[2]:>11.1f}" if cpu else ""))
    print("G x k: GAN seeds x U-Net++ seeds per GAN; ~: terms of the nearest pilot size; *: the target is out of "
          f"reach within {args.max_gans} GANs (the smallest MDE found); =: not planned (kept as the profile has it). "
          "Pilot terms per size: " + "; ".join(
              f"N={s}: GAN {t.gan:.2g}, seed {t.seed:.2g}, interaction {t.interaction:.2g}, noise {t.noise:.2g}"
              for s, t in sorted(terms.items())))


if __name__ == "__main__":
    main()
