"""GAN seeds per size: gan.extra_seeds at gan.extra_sizes give the small sizes more GANs (and U-Net++ seeds that nest
under them) through their own DVC stages; the default and evidence profiles have none and keep their stage names."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from dfgan.core.params_file import load_settings
from dfgan.core.settings import gan_seeds_at, seg_seeds_at, settings_from, with_values
from dfgan.core.validation import validate_params
from stages.train_seg import inputs as seg_inputs
from stages.train_seg import parse_args as seg_args
from tests.dvc_pipeline import ROOT, expand, load_profile
from tests.pipeline_repo import PROJECT_DIRS, PROJECT_FILES, run, stages_run


def test_seeds_at_each_size() -> None:
    settings = load_settings(ROOT / "params_paper.yaml")
    assert gan_seeds_at(settings, 50) == tuple(range(25)) and gan_seeds_at(settings, 2000) == (0, 1, 2)
    assert seg_seeds_at(settings, 100) == tuple(range(25)) and seg_seeds_at(settings, 250) == (0, 1, 2)
    run = seg_inputs(settings, seg_args(["--size", "50", "--condition", "dfgan", "--aug", "classic"]))
    assert run.config.seeds == tuple(range(25)) and run.gan_seeds == tuple(range(25))
    base = seg_inputs(settings, seg_args(["--size", "500", "--condition", "real", "--aug", "none"]))
    assert base.config.seeds == (0, 1, 2) and base.gan_seeds == ()


@pytest.mark.parametrize(("changes", "message"), [
    ({"gan": {"extra_sizes": [75]}}, "gan.extra_sizes: [75] are not in sizes"),
    ({"gan": {"extra_seeds": []}}, "gan.extra_seeds: is empty while gan.extra_sizes is not"),
    ({"gan": {"extra_seeds": [2, 3]}}, "gan.extra_seeds: [2] are in gan.seeds already"),
    ({"seg": {"extra_seeds": [3, 4]}}, "size 50: 25 GAN seeds but 5 U-Net++ seeds; size 100: 25 GAN seeds but 5"),
])
def test_bad_extra_seeds_are_one_line_each(changes: dict, message: str) -> None:
    params = load_profile("params_paper.yaml")
    for section, values in changes.items():
        params[section].update(values)
    problems = validate_params(params, "params_paper.yaml")
    assert len(problems) == 1 and message in problems[0], problems


def test_default_and_evidence_profiles_keep_their_stages() -> None:
    for profile in ("params.yaml", "params_evidence.yaml"):
        names = {stage.name for stage in expand(load_profile(profile))}
        assert not [n for n in names if "_extra@" in n]
    # The default profile's stages are exactly the committed lock's: the committed run is the profile's whole run.
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    assert set(lock) == {stage.name for stage in expand(load_profile("params.yaml"))}


@pytest.mark.slow  # dvc repro --dry over the ~280 stages of the paper profile
def test_dvc_repro_dry_lists_exactly_the_planned_stages_per_size(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, repo / name)
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "params_paper.yaml", repo / "params.yaml")
    (repo / "data/raw/siim").mkdir(parents=True)  # where the user's SIIM-ACR download goes (prepare's dep)
    (repo / "data/raw/siim/train-rle.csv").write_text("ImageId, EncodedPixels\n")
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    ran = stages_run(run(["dvc", "repro", "--dry", "--force"], repo).stdout)  # --force: nothing exists yet
    settings = settings_from(load_profile("params_paper.yaml"))
    per_size = Counter((name.split("@")[0].removesuffix("_extra"), int(name.split("@")[1].split("-")[0]))
                       for name in ran if name.startswith(("train_gan", "synthesize")))
    for size in settings.sizes:
        gans = len(settings.variants) * len(gan_seeds_at(settings, size))
        assert per_size[("train_gan", size)] == per_size[("synthesize", size)] == gans, size
    assert per_size[("train_gan", 50)] == 2 * 25 and per_size[("train_gan", 2000)] == 2 * 3
    conditions = len(settings.seg.real_conditions) + len(settings.variants) + len(settings.seg.flipped_variants)
    seg = Counter(int(name.split("@")[1].split("-")[0]) for name in ran if name.startswith("seg_"))
    assert all(seg[size] == 2 * conditions for size in settings.sizes)
    assert {"prepare", "report"} <= ran and not [n for n in ran if n.startswith("phantom")]


def test_with_values_reaches_the_extra_seeds() -> None:
    settings = with_values(load_settings(ROOT / "params.yaml"), {"gan.extra_seeds": [1], "gan.extra_sizes": [24],
                                                                   "seg.extra_seeds": [2]})
    assert gan_seeds_at(settings, 24) == (0, 1) and seg_seeds_at(settings, 24) == (0, 1, 2)
    assert gan_seeds_at(settings, 12) == (0,)
