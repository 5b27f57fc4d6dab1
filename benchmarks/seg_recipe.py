"""How stably a U-Net++ recipe trains: every seed of some GAN-free conditions at one size, outside DVC, with
``seg.*`` overrides; prints per run the failed seeds, the share still improving at the last round and Dice, and per
seed its kept round, rounds run, test Dice and validation curve.

    python -m benchmarks.seg_recipe --params params_evidence.yaml --prepared data/prepared --size 50 \\
        --conditions real real2x real+flip real+paste --augs none classic --seeds 0-11 \\
        -S seg.patience=4 --json recipe-before.json

It trains exactly what the ``seg_real`` stages train (:func:`dfgan.seg.experiment.run_seed`), so a recipe that passes
here passes there; conditions with GAN images need ``--synthetic`` (a ``data/synthetic`` root). What "failed" means:
:func:`dfgan.seg.stability.failed_seeds`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from dfgan.core.params_file import load_settings
from dfgan.core.runtime import resolve_device
from dfgan.core.settings import with_values
from dfgan.core.speed import configure_determinism
from dfgan.data.prepared_arrays import load_prepared
from dfgan.seg.config import SegConfig
from dfgan.seg.experiment import run_seed
from dfgan.seg.stability import SeedOutcome, failed_seeds


def seed_list(text: str) -> list[int]:
    """``0-11`` or ``0,3,5`` -> seeds."""
    if "-" in text:
        first, last = (int(x) for x in text.split("-"))
        return list(range(first, last + 1))
    return [int(x) for x in text.split(",")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--synthetic", default="data/synthetic")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--conditions", nargs="+", default=["real"])
    parser.add_argument("--augs", nargs="+", default=["none", "classic"])
    parser.add_argument("--seeds", type=seed_list, default=seed_list("0-11"))
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a params override in YAML form, e.g. seg.patience=null (repeatable)")
    parser.add_argument("--json", type=Path, help="write every seed's numbers here")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 on a shared machine: two spinning threads on one free core crawl)")
    return parser.parse_args(argv)


def overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = with_values(load_settings(args.params), overrides(args.set))
    prepared = load_prepared(args.prepared)
    device = resolve_device(settings.seg.device)
    configure_determinism(settings.runtime.deterministic)
    print(f"recipe: {', '.join(args.set) or 'as in ' + args.params}; size {args.size}, seeds {args.seeds}, "
          f"torch threads {torch.get_num_threads()}")
    report: list[dict[str, Any]] = []
    for aug in args.augs:
        config = SegConfig.of(settings.seg, aug)
        for condition in args.conditions:
            start = time.perf_counter()
            outcomes, rows = [], []
            for k, seed in enumerate(args.seeds):
                gan_seed = settings.gan.seeds[k % len(settings.gan.seeds)]
                run = run_seed(prepared, args.synthetic, args.size, condition, config, seed, gan_seed, device, None)
                outcome = SeedOutcome(best_round=run.fit.best_round, rounds=run.schedule.rounds,
                                      test_dice=run.test.mean_dice, empty_fraction=float(run.test.empty.mean()))
                outcomes.append(outcome)
                rows.append({"seed": seed, "best_round": run.fit.best_round, "rounds_run": run.fit.rounds_run,
                             "test_dice": run.test.mean_dice, "empty_fraction": outcome.empty_fraction,
                             "val_dice": [round(v, 4) for v in run.fit.val_dice],
                             "train_loss": [round(v, 4) for v in run.fit.train_loss]})
                print(f"  ({condition}-{aug} seed {seed}: {time.perf_counter() - start:.0f} s so far)", flush=True)
            failed = failed_seeds(outcomes)
            improving = [o.best_round == o.rounds for o in outcomes]
            dice = np.array([o.test_dice for o in outcomes])
            summary = {"condition": condition, "aug": aug, "failed": int(sum(failed)),
                       "still_improving": int(sum(improving)), "seeds": len(outcomes),
                       "dice_mean": float(dice.mean()), "dice_sem": float(dice.std(ddof=1) / np.sqrt(len(dice))),
                       "seconds": round(time.perf_counter() - start, 1), "per_seed": rows}
            report.append(summary)
            print(f"{condition}-{aug}: failed {summary['failed']}/{len(outcomes)}, still improving "
                  f"{summary['still_improving']}/{len(outcomes)}, Dice {summary['dice_mean']:.3f} ± "
                  f"{summary['dice_sem']:.3f} ({summary['seconds']:.0f} s)", flush=True)
            for row, bad in zip(rows, failed):
                print(f"  seed {row['seed']:>2}: kept round {row['best_round']:>2} of {row['rounds_run']:>2} run, "
                      f"test Dice {row['test_dice']:.3f}, empty {row['empty_fraction']:.0%}{'  FAILED' if bad else ''}"
                      f"  val {' '.join(f'{v:.2f}' for v in row['val_dice'])}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"overrides": args.set, "size": args.size, "runs": report}, indent=1) + "\n")


if __name__ == "__main__":
    main()
