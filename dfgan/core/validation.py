"""Checking a params dict against the schema: every key's rule, then the rules that span keys.

The schema is :data:`dfgan.core.settings.SCHEMA` (each settings field with its rule); :data:`CROSS_FIELD_RULES` are
small named functions for what one key cannot say alone (run only once every key passed). :func:`validate_params`
returns one self-contained line per problem, naming the file and the key; an unknown key is an error with a "did
you mean" hint. To add a param, add its field to :mod:`dfgan.core.settings` (and a cross-field function here when
it constrains another key).

This module imports nothing heavy, so ``python -m stages.check`` answers in a fraction of a second.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Mapping, Sequence

from dfgan.core.rules import REAL, REAL_CONDITIONS, VARIANTS, ListOf, Section
from dfgan.core.settings import SCHEMA
from dfgan.core.splits import validation_count


# ----------------------------------------------------------------------------------------------------------------
# Cross-field rules: each takes the (per-key valid) params and returns problems as (key, message) pairs.


Problem = tuple[str, str]


def items_outside(key: str, items: Sequence[Any], allowed: Sequence[str], what: str, listed: str) -> list[Problem]:
    """One problem per item not in ``allowed``: ``<key>[k]: '<item>' <what>; did you mean <closest>? <listed>
    [allowed]``."""
    problems = []
    for k, item in enumerate(items):
        if item not in allowed:
            close = difflib.get_close_matches(str(item), list(allowed), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            problems.append((f"{key}[{k}]", f"{item!r} {what}; {hint}{listed} {list(allowed)}"))
    return problems


def known_conditions(params: Mapping[str, Any]) -> list[Problem]:
    """R must be trained (every difference is against it); R + 2S only for variants that are trained."""
    problems = []
    if REAL not in params["seg"]["real_conditions"]:
        problems.append(("seg.real_conditions", f"must include {REAL!r}: every comparison is against it"))
    return problems + items_outside("seg.flipped_variants", params["seg"]["flipped_variants"], params["variants"],
                                    "is not a trained GAN variant", "variants are")


def primary_is_trained(params: Mapping[str, Any]) -> list[Problem]:
    """report.primary is '<variant>-<aug>': R + S of a trained variant against R, with a known augmentation."""
    variant, _, aug = str(params["report"]["primary"]).rpartition("-")
    augs = sorted(params["seg"]["augmentations"])
    if variant not in params["variants"] or aug not in augs:
        return [("report.primary", f"{params['report']['primary']!r} must be <variant>-<aug> with a variant of "
                 f"{list(params['variants'])} and an aug of {augs}, e.g. dfgan-classic")]
    return []


def declared_sizes_are_trained(params: Mapping[str, Any]) -> list[Problem]:
    """report.primary_sizes lists trained sizes only."""
    declared = params["report"]["primary_sizes"]
    missing = [size for size in declared or [] if size not in params["sizes"]]
    if missing:
        return [("report.primary_sizes", f"{missing} are not in sizes {list(params['sizes'])}; list trained sizes "
                 "or null for every size")]
    return []


def gate_names_conditions(params: Mapping[str, Any]) -> list[Problem]:
    """Each gate baseline names a condition (a GAN-free one or a GAN variant) other than R and the primary's own
    variant; one that these params do not train is simply not asked (questions.md says so)."""
    variant = str(params["report"]["primary"]).rpartition("-")[0]
    known = [c for c in (*REAL_CONDITIONS, *VARIANTS) if c not in (REAL, variant)]
    return items_outside("report.gate", params["report"]["gate"], known,
                         f"must be a condition other than R and the primary's variant {variant!r}", "one of")


def extra_seeds_fit(params: Mapping[str, Any]) -> list[Problem]:
    """gan.extra_sizes are trained sizes and come with gan.extra_seeds (and the reverse); extra seeds are new seeds;
    every size has at least as many U-Net++ seeds as GAN seeds (a GAN without one would be trained for nothing)."""
    gan, seg, sizes = params["gan"], params["seg"], list(params["sizes"])
    problems = []
    stray = [size for size in gan["extra_sizes"] if size not in sizes]
    if stray:
        problems.append(("gan.extra_sizes", f"{stray} are not in sizes {sizes}"))
    if bool(gan["extra_sizes"]) != bool(gan["extra_seeds"]):
        empty, full = ("gan.extra_seeds", "gan.extra_sizes") if gan["extra_sizes"] else ("gan.extra_sizes",
                                                                                           "gan.extra_seeds")
        problems.append((empty, f"is empty while {full} is not: give both (extra GAN seeds at some sizes) or neither"))
    for section, name in ((gan, "gan"), (seg, "seg")):
        again = sorted(set(section["seeds"]) & set(section["extra_seeds"]))
        if again:
            problems.append((f"{name}.extra_seeds", f"{again} are in {name}.seeds already"))
    short: dict[str, list[tuple[int, int, int]]] = {}  # key -> (size, GAN seeds, U-Net++ seeds)
    for size in sizes:
        extra = size in gan["extra_sizes"]
        n_gans = len(gan["seeds"]) + (len(gan["extra_seeds"]) if extra else 0)
        n_seg = len(seg["seeds"]) + (len(seg["extra_seeds"]) if extra else 0)
        if n_seg < n_gans:
            short.setdefault("seg.extra_seeds" if extra else "seg.seeds", []).append((size, n_gans, n_seg))
    for key, cases in short.items():
        where = "; ".join(f"size {size}: {n_gans} GAN seeds but {n_seg} U-Net++ seeds" for size, n_gans, n_seg in cases)
        problems.append((key, f"{where}: a GAN without a U-Net++ seed is trained for nothing; give {key} more seeds"))
    return problems


def some_epochs(params: Mapping[str, Any]) -> list[Problem]:
    gan = params["gan"]
    if gan["n_epochs"] + gan["n_epochs_decay"] < 1:
        return [("gan.n_epochs", "gan.n_epochs + gan.n_epochs_decay must be at least 1, got 0")]
    return []


def some_segmentation_loss(params: Mapping[str, Any]) -> list[Problem]:
    seg = params["seg"]
    if seg["bce_weight"] + seg["dice_weight"] <= 0:
        return [("seg.bce_weight", "seg.bce_weight and seg.dice_weight are both 0: the U-Net++ would have no loss")]
    return []


def validation_split_fits(params: Mapping[str, Any]) -> list[Problem]:
    """A positive data.val_fraction carves at least one validation image and leaves one to train on."""
    smallest = min(params["sizes"])
    if params["data"]["val_fraction"] > 0 and smallest < 2:
        return [("data.val_fraction", f"a validation split needs sizes >= 2, but sizes has {smallest}; "
                 "raise the size or set data.val_fraction: 0")]
    return []


def gan_batch_fits(params: Mapping[str, Any]) -> list[Problem]:
    """Every GAN batch is full, so the smallest size's training images (less validation) must fill one."""
    smallest = min(params["sizes"])
    n_val = validation_count(smallest, params["data"]["val_fraction"]) if smallest > 1 else 0
    if smallest - n_val < params["gan"]["batch_size"]:
        return [("gan.batch_size", f"gan.batch_size {params['gan']['batch_size']} is larger than the {smallest - n_val} "
                 f"training images of size {smallest} (after {n_val} validation images); lower gan.batch_size or "
                 "raise the smallest size")]
    return []


def phantom_has_enough_positives(params: Mapping[str, Any]) -> list[Problem]:
    """On the phantom, the positives it makes must cover the largest size plus the test set."""
    phantom, data = params["phantom"], params["data"]
    if str(data["raw_dir"]).rstrip("/") != str(phantom["out_dir"]).rstrip("/"):
        return []
    positives = int(round(phantom["count"] * phantom["positive_fraction"]))
    needed = max(params["sizes"]) + data["test_size"]
    if positives < needed:
        return [("phantom.count", f"the phantom makes {positives} positive images (count x positive_fraction) but "
                 f"max(sizes) + data.test_size = {needed}; raise phantom.count or lower the sizes")]
    return []


CROSS_FIELD_RULES: tuple[Callable[[Mapping[str, Any]], list[Problem]], ...] = (
    known_conditions,
    primary_is_trained,
    declared_sizes_are_trained,
    gate_names_conditions,
    extra_seeds_fit,
    some_epochs,
    some_segmentation_loss,
    validation_split_fits,
    gan_batch_fits,
    phantom_has_enough_positives,
)


# ----------------------------------------------------------------------------------------------------------------
# Validation


def _lookup(params: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _did_you_mean(dotted: str) -> str:
    parent, _, name = dotted.rpartition(".")
    elsewhere = [k for k in SCHEMA if k.rpartition(".")[2] == name]
    if elsewhere:  # the right key in the wrong section
        return f"; did you mean {elsewhere[0]}?"
    siblings = [k.rpartition(".")[2] for k in SCHEMA if k.rpartition(".")[0] == parent]
    close = difflib.get_close_matches(name, siblings, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {parent + '.' if parent else ''}{close[0]}?"
    return f"; remove it (known keys here: {', '.join(siblings)})" if siblings else "; remove it"


def _unknown_keys(node: Mapping[str, Any], prefix: str = "") -> list[Problem]:
    problems = []
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if dotted not in SCHEMA:
            problems.append((dotted, f"unknown key{_did_you_mean(dotted)}"))
        elif isinstance(SCHEMA[dotted], Section) and isinstance(value, dict):
            problems.extend(_unknown_keys(value, dotted + "."))
    return problems


def _missing_hint(dotted: str, rule: Any) -> str:
    parent = dotted.rpartition(".")[0]
    where = f"under '{parent}:'" if parent else "at the top level"
    what = rule.expects() + (f": {rule.help}" if rule.help else "")
    return f"missing; add it {where} ({what})"


def problems_in(params: Mapping[str, Any]) -> list[Problem]:
    """Every problem as (dotted key, message): unknown keys, missing keys, wrong values, then cross-field rules."""
    problems = _unknown_keys(params)
    for dotted, rule in SCHEMA.items():
        present, value = _lookup(params, dotted)
        if not present:
            parent_present, parent = _lookup(params, dotted.rpartition(".")[0]) if "." in dotted else (True, params)
            if parent_present and isinstance(parent, dict):  # a missing section is reported once, not per key
                problems.append((dotted, _missing_hint(dotted, rule)))
            continue
        found = rule.problems(value) if isinstance(rule, ListOf) else [("", rule.problem(value))]
        help_text = f" ({rule.help})" if rule.help else ""
        problems.extend((dotted + suffix, problem + help_text) for suffix, problem in found if problem)
    if not problems:
        for check in CROSS_FIELD_RULES:
            problems.extend(check(params))
    return problems


def validate_params(params: Mapping[str, Any], source: str = "params.yaml") -> list[str]:
    """One line per problem, ``<file>: <key>: <what is wrong and the fix>``; empty when the params are valid."""
    return [f"{source}: {key}: {message}" for key, message in problems_in(params)]
