"""dvc.yaml names exactly the files that dfgan/core/paths.py makes, for every params profile.

Each stage of dvc.yaml, expanded over its ``matrix`` for a profile, must declare as ``deps`` the files its code reads
and as ``outs``/``metrics``/``plots`` the files it writes, both computed here from :mod:`dfgan.core.paths` with the
arguments of the stage's own ``cmd`` (parsed by the stage's own parser). So a path renamed in one place and not the
other fails here, not as a FileNotFoundError hours into a run; and every data dependency must be what an earlier
stage writes (or the raw data).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from dfgan.core import paths
from dfgan.seg.training_sets import parse_condition
from dvc_pipeline import PROFILES, StageInstance, expand, load_profile


def posix(*items: Path | str) -> frozenset[str]:
    return frozenset(Path(item).as_posix() for item in items)


def expected_files(stage: StageInstance, params: dict[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """(deps, writes) of one stage as its code names them."""
    args = importlib.import_module(stage.module).parse_args(stage.argv)
    if stage.module == "stages.phantom":
        return posix(), posix(params["phantom"]["out_dir"], paths.CONTACT_SHEET)
    if stage.module == "stages.prepare":
        return posix(params["data"]["raw_dir"]), posix(paths.PREPARED, paths.DATA_METRICS)
    if stage.module == "stages.fid_stats":
        assert args.split in ("train", "test"), "dvc.yaml runs the train and test statistics as separate stages"
        written = paths.fid_train_stats(args.size) if args.split == "train" else paths.fid_test_stats()
        return posix(paths.PREPARED), posix(written)
    if stage.module == "stages.train_gan":
        gan = paths.gan_run(args.size, args.variant, args.seed)
        reads = posix(paths.PREPARED, paths.fid_train_stats(args.size))
        return reads, posix(gan.out_dir, gan.metrics_path, paths.live_plots(gan.live_dir))
    if stage.module == "stages.synthesize":
        synth = paths.synth_run(args.size, args.variant, args.seed)
        reads = posix(paths.PREPARED, synth.model_dir, paths.fid_train_stats(args.size), paths.fid_test_stats())
        return reads, posix(synth.out_dir, synth.metrics_path)
    if stage.module == "stages.train_seg":
        seg = paths.seg_run(args.size, args.condition, args.aug)
        variant = parse_condition(args.condition).variant
        synthetic = [] if variant is None else [paths.synthetic_variant_dir(args.size, variant)]
        return posix(paths.PREPARED, *synthetic), posix(seg.out_dir, seg.metrics_path, paths.live_plots(seg.live_dir))
    if stage.module == "stages.report":
        reads = posix(paths.PREPARED, paths.SEG_METRICS, paths.SEG_DATA, paths.SYNTHETIC)
        return reads, posix(*(paths.report_file(name) for name in paths.REPORT_FILES))
    raise AssertionError(f"{stage.name}: no expected files for {stage.module}; add it to this test")


@pytest.mark.parametrize("profile", PROFILES)
def test_every_stage_declares_the_files_its_code_reads_and_writes(profile: str) -> None:
    params = load_profile(profile)
    for stage in expand(params):
        deps, writes = expected_files(stage, params)
        assert stage.deps == deps, (
            f"dvc.yaml {stage.name} ({profile}): deps missing {sorted(deps - stage.deps)}, "
            f"not read by its code {sorted(stage.deps - deps)}"
        )
        assert stage.writes == writes, (
            f"dvc.yaml {stage.name} ({profile}): outs/metrics/plots missing {sorted(writes - stage.writes)}, "
            f"not written by its code {sorted(stage.writes - writes)}"
        )


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


@pytest.mark.parametrize("profile", PROFILES)
def test_every_data_dependency_is_written_upstream(profile: str) -> None:
    """Each dep is the raw data or overlaps what another stage writes (the file, a folder of it, or inside it)."""
    params = load_profile(profile)
    stages = expand(params)
    written = [(stage.name, path) for stage in stages for path in stage.writes]
    raw = Path(params["data"]["raw_dir"]).as_posix()
    for stage in stages:
        for dep in stage.deps - {raw}:
            writers = {name for name, path in written if inside(path, dep) or inside(dep, path)}
            assert writers - {stage.name}, f"{stage.name} ({profile}) reads {dep}, which no stage writes"


def test_checkpoints_stay_outside_every_dvc_output() -> None:
    """DVC deletes a stage's outputs before it runs: a resumable checkpoint must not be one of them."""
    checkpoint = paths.gan_run(12, "dfgan", 0).checkpoint_path.as_posix()
    for profile in PROFILES:
        for stage in expand(load_profile(profile)):
            assert not any(inside(checkpoint, out) or inside(out, checkpoint) for out in stage.writes), stage.name


def test_a_seg_run_writes_its_per_image_table_inside_its_output() -> None:
    run = paths.seg_run(24, "dfgan2x", "classic")
    assert run.per_image_path.parent == run.out_dir
    assert run.out_dir.as_posix() == "data/seg/24/real+dfgan2x-classic"
    assert run.metrics_path.as_posix() == "metrics/seg/24/real+dfgan2x-classic.json"
    assert paths.seg_run(24, "real+paste", "none").metrics_path.name == "real+paste-none.json"
    with pytest.raises(KeyError, match="table9"):
        paths.report_file("table9.md")
