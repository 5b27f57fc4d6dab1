"""Every artefact of the pipeline by name: the one home of its paths, relative to the repository root.

The stages write and read through these functions and ``dvc.yaml`` names the same files; ``tests/test_paths.py``
expands ``dvc.yaml`` for every params profile and checks that each of its ``outs``, ``deps``, ``metrics`` and
``plots`` is a path made here, and each path made here is in ``dvc.yaml``. A rename is one edit here plus the
matching edit there, which the test demands.

Functions that read a whole tree take its root as a keyword (the pipeline's by default), so that tests can point
them at a temporary folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dfgan.core.rules import REAL, REAL_CONDITIONS

# The phantom stage (its tree goes to params ``phantom.out_dir``; real data is read from ``data.raw_dir``).
CONTACT_SHEET = Path("data/raw/phantom_contact_sheet.png")
# The prepare stage.
PREPARED = Path("data/prepared")
DATA_METRICS = Path("metrics/data.json")
# The fid_stats stages: Inception statistics of the real images.
FID_STATS = Path("data/fid_stats")
# The train_gan stage (checkpoints live outside every DVC output, so that DVC never deletes them).
GAN_MODELS = Path("models/gan")
GAN_CHECKPOINTS = Path("checkpoints/gan")
GAN_LIVE = Path("dvclive/gan")
GAN_METRICS = Path("metrics/gan")
# The synthesize stage.
SYNTHETIC = Path("data/synthetic")
SYNTH_METRICS = Path("metrics/synth")
# The seg stages.
SEG_DATA = Path("data/seg")
SEG_LIVE = Path("dvclive/seg")
SEG_METRICS = Path("metrics/seg")
PER_IMAGE_FILE = "per_image.csv"
# Where a training log's curves go inside its folder: DVCLive's layout (dfgan.core.training_log writes the same).
PLOTS_FOLDER = Path("plots") / "metrics"
# The report stage.
REPORT = Path("metrics/report")

# Every file the report stage writes into REPORT, and what a reader finds in it (printed after a run).
REPORT_FILES: dict[str, str] = {
    "questions.md": "read first: the oracle, the primary question, the gate, what a synthetic image is worth, failed seeds",
    "forest.png": "the questions as a forest plot: each contrast's mean and interval, the oracle gain, the margin",
    "table1.md": "Table 1: Dice of R, R x2, R + fresh, R + S (Pix2Pix, DF-GAN) per size, paired differences, the paper's",
    "table2.md": "Table 2: Dice of R, R + S and R + 2S (DF-GAN), paired differences to R",
    "controls.md": "GAN images against the controls without a GAN (R + flip, R + paste, R + paste 2x)",
    "convergence.md": "per run: failed seeds, share still improving at the last round, steps, empty predictions",
    "fig3_samples.png": "Figure 3: real, Pix2Pix and DF-GAN images around the same lesions",
    "fig4_improvement.png": "Figure 4: relative Dice improvement over R vs size, with the paper's",
    "dice_vs_size.png": "Dice vs training size for every condition",
    "summary.json": "headline numbers; every paired difference with its MDE and equivalence (dvc metrics show)",
    "table1.json": "Table 1 as data",
    "table2.json": "Table 2 as data",
    "controls.json": "the controls table as data",
    "improvement.csv": "Figure 4 as data",
    "dice_vs_size.csv": "Dice vs training size as data (dvc plots show)",
}


def live_plots(live_dir: Path) -> Path:
    """The curves folder of a training log (what ``dvc.yaml`` declares as ``plots``)."""
    return live_dir / PLOTS_FOLDER


# ---------------------------------------------------------------------------------------------------------------------
# Real-image statistics


def fid_train_stats(size: int, stats_dir: str | Path = FID_STATS) -> Path:
    """Statistics of one size's GAN training images (the FID loss's target)."""
    return Path(stats_dir) / f"train_{size}.npz"


def fid_test_stats(stats_dir: str | Path = FID_STATS) -> Path:
    """Statistics of the held-out test images."""
    return Path(stats_dir) / "test.npz"


# ---------------------------------------------------------------------------------------------------------------------
# One GAN and its synthetic set


def gan_name(size: int, variant: str, seed: int) -> str:
    """``<size>_<variant>_s<seed>``: one GAN per training size, variant and seed in ``gan.seeds``."""
    return f"{size}_{variant}_s{seed}"


@dataclass(frozen=True)
class GanRunPaths:
    """What one train_gan run writes: the generator folder, its resumable checkpoint, curves and metrics."""

    out_dir: Path
    checkpoint_path: Path
    live_dir: Path
    metrics_path: Path


def gan_run(size: int, variant: str, seed: int) -> GanRunPaths:
    name = gan_name(size, variant, seed)
    return GanRunPaths(
        out_dir=GAN_MODELS / name,
        checkpoint_path=GAN_CHECKPOINTS / f"{name}.pt",
        live_dir=GAN_LIVE / name,
        metrics_path=GAN_METRICS / f"{name}.json",
    )


def synthetic_variant_dir(size: int | str, variant: str, root: str | Path = SYNTHETIC) -> Path:
    """Every GAN seed's synthetic set of one size and variant (what a U-Net++ run with that variant reads)."""
    return Path(root) / str(size) / variant


def synthetic_dir(size: int | str, variant: str, seed: int | str, root: str | Path = SYNTHETIC) -> Path:
    """One GAN seed's synthetic set."""
    return synthetic_variant_dir(size, variant, root) / f"s{seed}"


@dataclass(frozen=True)
class SynthRunPaths:
    """What one synthesize run reads (the generator) and writes (the synthetic set and its FID/KID metrics)."""

    model_dir: Path
    out_dir: Path
    metrics_path: Path


def synth_run(size: int, variant: str, seed: int) -> SynthRunPaths:
    return SynthRunPaths(
        model_dir=gan_run(size, variant, seed).out_dir,
        out_dir=synthetic_dir(size, variant, seed),
        metrics_path=SYNTH_METRICS / f"{gan_name(size, variant, seed)}.json",
    )


# ---------------------------------------------------------------------------------------------------------------------
# One U-Net++ condition


def condition_label(condition: str) -> str:
    """The training-set name used in paths and tables: a condition without a GAN as it is (``real``, ``real2x``,
    ``real+paste``), a GAN condition as ``real+<condition>`` (``real+dfgan2x``)."""
    if not condition:
        raise ValueError("empty condition name")
    return condition if condition in REAL_CONDITIONS else f"{REAL}+{condition}"


def run_label(condition: str, aug: str) -> str:
    """The file stem of one run, as dvc.yaml names it: ``real-none``, ``real2x-none``, ``real+dfgan2x-classic``."""
    return f"{condition_label(condition)}-{aug}"


@dataclass(frozen=True)
class SegRunPaths:
    """What one seg run (a condition and augmentation over every U-Net++ seed) writes."""

    out_dir: Path
    per_image_path: Path
    metrics_path: Path
    live_dir: Path


def seg_run(
    size: int,
    condition: str,
    aug: str,
    *,
    data_root: str | Path = SEG_DATA,
    metrics_root: str | Path = SEG_METRICS,
    live_root: str | Path = SEG_LIVE,
) -> SegRunPaths:
    label = run_label(condition, aug)
    out_dir = Path(data_root) / str(size) / label
    return SegRunPaths(
        out_dir=out_dir,
        per_image_path=out_dir / PER_IMAGE_FILE,
        metrics_path=Path(metrics_root) / str(size) / f"{label}.json",
        live_dir=Path(live_root) / str(size) / label,
    )


# ---------------------------------------------------------------------------------------------------------------------
# The report


def report_file(name: str, root: str | Path = REPORT) -> Path:
    """One of :data:`REPORT_FILES` (an unknown name is an error, not a new file)."""
    if name not in REPORT_FILES:
        raise KeyError(f"not a report file: {name!r} (known: {', '.join(REPORT_FILES)})")
    return Path(root) / name
