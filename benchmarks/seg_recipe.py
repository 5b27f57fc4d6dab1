"""How stably a U-Net++ recipe trains: every seed of some GAN-free conditions at one size, outside DVC, with
``seg.*`` overrides; prints per run the failed seeds, the share still improving at the last round and Dice, and per
seed its kept round, rounds run, test Dice and validation curve.

    python -m benchmarks.seg_recipe --params params_evidence.yaml --prepared data/prepared --size 50 \\
        --conditions real real2x real+flip real+paste --augs none classic --seeds 0-11 \\
        -S seg.patience=4 --json recipe-before.json

``--shadow ROUNDS,PATIENCE,MIN_ROUNDS`` also gives, from the same training, the outcome of a shorter recipe that
stops earlier (``--shadow-json`` writes it as a run of its own): the learning rate is constant and the batch stream
and augmentation draws are fixed by the seed, so the two recipes train identically until the shorter one stops; only
its stopping rule and kept round differ. The kept round's weights are tested after the run. ``--shadow 15,4,1`` is
the v2 recipe under the v3 one (40 rounds, patience 5, min_rounds 15, which never stops before round 15); check it
against a real run of the short recipe (``-S seg.epochs=15 -S seg.patience=4 -S seg.min_rounds=1``) on a few seeds:
``--check-shadow SHADOW.json REAL.json`` compares every seed both hold (kept round, rounds run, validation curve,
test Dice) and exits 1 on any difference.

Several runs' ``--json`` files side by side, one row per condition and arm, recipe against recipe:

    python -m benchmarks.seg_recipe --table before=recipe-before.json after=recipe-after.json

It trains exactly what the ``seg_real`` stages train (:func:`dfgan.seg.experiment.run_seed`), so a recipe that passes
here passes there; conditions with GAN images need ``--synthetic`` (a ``data/synthetic`` root). What "failed" means:
:func:`dfgan.seg.stability.failed_seeds`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
from dfgan.seg import fit as seg_fit
from dfgan.seg.experiment import run_seed
from dfgan.seg.model import build_training_model, evaluate
from dfgan.seg.stability import SeedOutcome, failed_seeds


def seed_list(text: str) -> list[int]:
    """``0-11`` or ``0,3,5`` -> seeds."""
    if "-" in text:
        first, last = (int(x) for x in text.split("-"))
        return list(range(first, last + 1))
    return [int(x) for x in text.split(",")]


@dataclass
class ShadowRecipe:
    """A shorter recipe followed round by round alongside the real run: which round it would keep, and its weights."""

    rounds: int
    patience: int | None
    min_rounds: int
    round: int = 0
    best_dice: float = float("-inf")
    best_round: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    stopped: bool = False
    val_dice: list[float] = field(default_factory=list)

    def fresh(self) -> "ShadowRecipe":
        return ShadowRecipe(self.rounds, self.patience, self.min_rounds)

    def see(self, model: torch.nn.Module, val_dice: float) -> None:
        """One validated round of the real run; the rule of :func:`dfgan.seg.fit.fit` (ties keep the later round)."""
        if self.stopped:
            return
        self.round += 1
        self.val_dice.append(val_dice)
        if val_dice >= self.best_dice:
            self.best_dice, self.best_round, self.best_state = val_dice, self.round, seg_fit.state_copy(model)
        if self.round >= self.rounds or seg_fit.stops_early(self.round, self.best_round, self.patience,
                                                            self.min_rounds):
            self.stopped = True


def shadow_recipe(text: str) -> ShadowRecipe:
    rounds, patience, min_rounds = (None if x.strip() in ("null", "none") else int(x) for x in text.split(","))
    if rounds is None or min_rounds is None:
        raise argparse.ArgumentTypeError(f"expected ROUNDS,PATIENCE,MIN_ROUNDS such as 15,4,1, got {text!r}")
    return ShadowRecipe(rounds, patience, min_rounds)


@contextmanager
def shadowing(shadow: ShadowRecipe | None) -> Iterator[None]:
    """While the real run trains, hand every validation (the model and its Dice) to ``shadow``."""
    if shadow is None:
        yield
        return
    real_evaluate = seg_fit.evaluate

    def validate(model: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        result = real_evaluate(model, *args, **kwargs)
        shadow.see(model, result.mean_dice)
        return result

    seg_fit.evaluate = validate
    try:
        yield
    finally:
        seg_fit.evaluate = real_evaluate


def run_summary(condition: str, aug: str, outcomes: list[SeedOutcome], rows: list[dict[str, Any]],
                seconds: float) -> dict[str, Any]:
    failed = failed_seeds(outcomes)
    dice = np.array([o.test_dice for o in outcomes])
    for row, bad in zip(rows, failed):
        row["failed"] = bad
    return {"condition": condition, "aug": aug, "failed": int(sum(failed)),
            "still_improving": int(sum(o.best_round == o.rounds for o in outcomes)), "seeds": len(outcomes),
            "dice_mean": float(dice.mean()), "dice_sem": float(dice.std(ddof=1) / np.sqrt(len(dice))),
            "seconds": round(seconds, 1), "per_seed": rows}


def print_run(label: str, summary: dict[str, Any]) -> None:
    n = summary["seeds"]
    print(f"{label}{summary['condition']}-{summary['aug']}: failed {summary['failed']}/{n}, still improving "
          f"{summary['still_improving']}/{n}, Dice {summary['dice_mean']:.3f} ± {summary['dice_sem']:.3f} "
          f"({summary['seconds']:.0f} s)", flush=True)
    for row in summary["per_seed"]:
        print(f"  seed {row['seed']:>2}: kept round {row['best_round']:>2} of {row['rounds_run']:>2} run, "
              f"test Dice {row['test_dice']:.3f}, empty {row['empty_fraction']:.0%}{'  FAILED' if row['failed'] else ''}"
              f"  val {' '.join(f'{v:.2f}' for v in row['val_dice'])}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--synthetic", default="data/synthetic")
    parser.add_argument("--size", type=int)
    parser.add_argument("--conditions", nargs="+", default=["real"])
    parser.add_argument("--augs", nargs="+", default=["none", "classic"])
    parser.add_argument("--seeds", type=seed_list, default=seed_list("0-11"))
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a params override in YAML form, e.g. seg.patience=null (repeatable)")
    parser.add_argument("--json", type=Path, help="write every seed's numbers here")
    parser.add_argument("--shadow", type=shadow_recipe, metavar="ROUNDS,PATIENCE,MIN_ROUNDS",
                        help="also report a shorter recipe's outcome from the same training (see above)")
    parser.add_argument("--shadow-json", type=Path, help="write the shadow recipe's runs here")
    parser.add_argument("--check-shadow", nargs=2, type=Path, metavar=("SHADOW_JSON", "REAL_JSON"),
                        help="compare a shadow recipe's seeds with a real run of that recipe and exit")
    parser.add_argument("--table", nargs="+", metavar="LABEL=FILE[,FILE...]",
                        help="print earlier runs' --json files as one table (each label a recipe) and exit")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 on a shared machine: two spinning threads on one free core crawl)")
    args = parser.parse_args(argv)
    if args.table is None and args.check_shadow is None and args.size is None:
        parser.error("--size is required (unless --table or --check-shadow)")
    return args


def overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = yaml.safe_load(value)
    return out


def load_runs(files: list[Path]) -> list[dict[str, Any]]:
    return [run for file in files for run in json.loads(file.read_text())["runs"]]


def recipe_table(recipes: dict[str, list[dict[str, Any]]]) -> str:
    """One Markdown row per condition, arm and recipe: failed seeds, seeds still improving at their last round, mean
    rounds run, test Dice (mean ± SE over seeds); then each recipe's totals."""
    lines = ["| condition | aug | recipe | seeds | failed | still improving | rounds run | Dice |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    keys = sorted({(run["condition"], run["aug"]) for runs in recipes.values() for run in runs},
                  key=lambda key: (key[1] != "none", key))
    for condition, aug in keys:
        for label, runs in recipes.items():
            for run in (r for r in runs if (r["condition"], r["aug"]) == (condition, aug)):
                rounds = np.mean([seed["rounds_run"] for seed in run["per_seed"]])
                lines.append(f"| {condition} | {aug} | {label} | {run['seeds']} | {run['failed']} | "
                             f"{run['still_improving']} | {rounds:.1f} | {run['dice_mean']:.3f} ± {run['dice_sem']:.3f} |")
    for label, runs in recipes.items():
        seeds = sum(run["seeds"] for run in runs)
        failed = sum(run["failed"] for run in runs)
        clean = sum(run["failed"] == 0 for run in runs)
        worst = max((run["still_improving"] / run["seeds"] for run in runs), default=0.0)
        lines.append(f"\n{label}: {failed} of {seeds} seeds failed ({failed / max(seeds, 1):.1%}) in {len(runs)} runs, "
                     f"{clean} run(s) with none; still improving at the last round: at most {worst:.0%} of a run's "
                     f"seeds")
    return "\n".join(lines)


SHADOW_KEYS = ("best_round", "rounds_run", "val_dice", "test_dice", "empty_fraction")


def check_shadow(shadow_runs: list[dict[str, Any]], real_runs: list[dict[str, Any]]) -> tuple[list[str], int]:
    """Lines comparing every (condition, aug, seed) both hold, and how many differ in any of :data:`SHADOW_KEYS`."""
    shadow = {(r["condition"], r["aug"], s["seed"]): s for r in shadow_runs for s in r["per_seed"]}
    lines, differ = [], 0
    for run in real_runs:
        for real in run["per_seed"]:
            key = (run["condition"], run["aug"], real["seed"])
            if key not in shadow:
                continue
            other = shadow[key]
            diffs = [k for k in SHADOW_KEYS if other.get(k) != real.get(k)]
            differ += bool(diffs)
            lines.append(f"{key[0]}-{key[1]} seed {key[2]}: real kept round {real['best_round']} of "
                         f"{real['rounds_run']}, test Dice {real['test_dice']:.6f}; shadow {other['best_round']} of "
                         f"{other['rounds_run']}, {other['test_dice']:.6f}: "
                         + ("identical" if not diffs else "DIFFER in " + ", ".join(diffs)))
    return lines, differ


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.check_shadow:
        lines, differ = check_shadow(*(load_runs([path]) for path in args.check_shadow))
        print("\n".join(lines) or "no seed in common")
        print(f"{len(lines) - differ} of {len(lines)} seed(s) identical")
        return 1 if differ or not lines else 0
    if args.table:
        recipes = {}
        for item in args.table:
            label, _, files = item.partition("=")
            recipes[label] = load_runs([Path(f) for f in files.split(",")])
        print(recipe_table(recipes))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = with_values(load_settings(args.params), overrides(args.set))
    prepared = load_prepared(args.prepared)
    device = resolve_device(settings.seg.device)
    configure_determinism(settings.runtime.deterministic)
    print(f"recipe: {', '.join(args.set) or 'as in ' + args.params}; size {args.size}, seeds {args.seeds}, "
          f"torch threads {torch.get_num_threads()}")
    report: list[dict[str, Any]] = []
    shadow_report: list[dict[str, Any]] = []
    for aug in args.augs:
        config = SegConfig.of(settings.seg, aug)
        for condition in args.conditions:
            start = time.perf_counter()
            outcomes, rows, shadow_outcomes, shadow_rows = [], [], [], []
            for k, seed in enumerate(args.seeds):
                gan_seed = settings.gan.seeds[k % len(settings.gan.seeds)]
                shadow = args.shadow.fresh() if args.shadow else None
                with shadowing(shadow):
                    run = run_seed(prepared, args.synthetic, args.size, condition, config, seed, gan_seed, device, None)
                outcome = SeedOutcome(best_round=run.fit.best_round, rounds=run.schedule.rounds,
                                      test_dice=run.test.mean_dice, empty_fraction=float(run.test.empty.mean()))
                outcomes.append(outcome)
                rows.append({"seed": seed, "best_round": run.fit.best_round, "rounds_run": run.fit.rounds_run,
                             "test_dice": run.test.mean_dice, "empty_fraction": outcome.empty_fraction,
                             "val_dice": [round(v, 4) for v in run.fit.val_dice],
                             "train_loss": [round(v, 4) for v in run.fit.train_loss]})
                if shadow is not None:
                    if not shadow.stopped or shadow.best_state is None:
                        raise SystemExit(f"seed {seed}: the run stopped after {shadow.round} rounds, before the shadow "
                                         f"recipe would have: --shadow must stop no later than the real recipe")
                    model = build_training_model(config, device)
                    model.load_state_dict(shadow.best_state)
                    test = prepared.test()
                    tested = evaluate(model, np.asarray(test.images), np.asarray(test.masks), config.threshold, device,
                                      config.batch_size)
                    shadow_outcomes.append(SeedOutcome(best_round=shadow.best_round, rounds=shadow.rounds,
                                                       test_dice=tested.mean_dice,
                                                       empty_fraction=float(tested.empty.mean())))
                    shadow_rows.append({"seed": seed, "best_round": shadow.best_round, "rounds_run": shadow.round,
                                        "test_dice": tested.mean_dice, "empty_fraction": float(tested.empty.mean()),
                                        "val_dice": [round(v, 4) for v in shadow.val_dice]})
                print(f"  ({condition}-{aug} seed {seed}: {time.perf_counter() - start:.0f} s so far)", flush=True)
            seconds = time.perf_counter() - start
            report.append(run_summary(condition, aug, outcomes, rows, seconds))
            print_run("", report[-1])
            if args.shadow:
                shadow_report.append(run_summary(condition, aug, shadow_outcomes, shadow_rows, seconds))
                print_run(f"shadow {args.shadow.rounds},{args.shadow.patience},{args.shadow.min_rounds}: ",
                          shadow_report[-1])
    if args.shadow_json:
        args.shadow_json.write_text(json.dumps({"shadow": [args.shadow.rounds, args.shadow.patience,
                                                           args.shadow.min_rounds],
                                                "size": args.size, "runs": shadow_report}, indent=1) + "\n")
    if args.json:
        args.json.write_text(json.dumps({"overrides": args.set, "size": args.size, "runs": report}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
