"""Bad params and faults cost nothing: the schema, one-line errors from every stage, pool workers dying with the
parent. (Bad data trees are in test_prepare.py; the GAN checkpoint clean-up in test_gan.py.)"""

from __future__ import annotations

import copy
import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from dfgan.core.errors import INPUT_ERROR_EXIT, InputError, ParamsError, run_stage
from dfgan.core.params_file import load_params
from dfgan.core.settings import SCHEMA
from dfgan.core.validation import validate_params
from stages import check as check_stage
from stages import prepare as prepare_stage
from tests.pipeline_repo import make_pipeline_repo, run as run_cmd

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("params.yaml", "params_paper.yaml")


def demo_params() -> dict[str, Any]:
    return copy.deepcopy(load_params(PROJECT_ROOT / "params.yaml"))


def leaf_keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, value in tree.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= leaf_keys(value, f"{prefix}{key}.")
    return keys


# ----------------------------------------------------------------------------------------------------------------
# The schema


@pytest.mark.parametrize("profile", PROFILES)
def test_both_committed_profiles_pass_and_the_schema_covers_every_key(profile: str) -> None:
    params = yaml.safe_load((PROJECT_ROOT / profile).read_text())
    assert validate_params(params, profile) == []
    assert leaf_keys(params) == set(SCHEMA)  # every key described, nothing in the schema that a profile lacks
    check = subprocess.run([sys.executable, "-m", "stages.check", "--params", profile, "--no-data"],
                           cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout == f"{profile}: every key valid\n" and check.stderr == ""


def mutate(params: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, name = dotted.split(".")
    node = params
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[name]
    else:
        node[name] = value


DELETE = object()

# (key, bad value, the one line expected after "<file>: ")
BAD_PARAMS = [
    ("gan.lambda_l1", -1, "gan.lambda_l1: must be a number >= 0, got -1"),
    ("gan.lambda_fid", "lots", "gan.lambda_fid: must be a number >= 0, got the text 'lots'"),
    ("sizes", ["4", 8], "sizes[0]: must be an integer >= 1, got the text '4' (write 4 without quotes)"),
    ("sizes", [24, 12], "sizes: must be strictly increasing, got [24, 12]"),
    ("gan.batch_size", 0, "gan.batch_size: must be an integer >= 1, got 0"),
    ("seg.batch_size", -4, "seg.batch_size: must be an integer >= 1, got -4"),
    ("seg.epochs", 0, "seg.epochs: must be an integer >= 1, got 0"),
    ("gan.n_epochs", 2.5, "gan.n_epochs: must be an integer >= 0, got 2.5"),
    ("data.val_fraction", 1.5, "data.val_fraction: must be a number in [0, 1), got 1.5"),
    ("seg.schedule", "step", "seg.schedule: must be one of steps, epochs, got the text 'step' (did you mean steps?)"),
    ("seg.budget_factor", 0, "seg.budget_factor: must be a number > 0, got 0"),
    ("gan.seeds", [0, 0], "gan.seeds: must not repeat items, got [0, 0]"),
    ("gan.batch_size", 20, "gan.batch_size: gan.batch_size 20 is larger than the 19 training images of size 24"),
    ("seg.real_conditions", ["real2x"], "seg.real_conditions: must include 'real': every comparison is against it"),
    ("phantom.positive_fraction", -0.1, "phantom.positive_fraction: must be a number in [0, 1], got -0.1"),
    ("gan.mask_channel", "yes", "gan.mask_channel: must be true or false, got the text 'yes'"),
    ("fid.eigen_floor", "1e-12", "fid.eigen_floor: must be a number >= 0, got the text '1e-12' (YAML reads 1e-12 "
     "as text: write 1.0e-12)"),
    ("data.image_size", 48, "data.image_size: must be a power of two >= 32, got 48"),
    ("data.image_size", 16, "data.image_size: must be a power of two >= 32, got 16"),
    ("data.rle_grid", "1024", "data.rle_grid: must be text like native or 1024x1024, got the text '1024'"),
    ("gan.fid_mode", "detach", "gan.fid_mode: must be one of differentiable, detached, got the text 'detach' "
     "(did you mean detached?)"),
    ("seg.flipped_variants", ["dfgan", "dfgam"], "seg.flipped_variants[1]: 'dfgam' is not a trained GAN variant; "
     "did you mean dfgan? variants are ['pix2pix', 'dfgan']"),
    ("seg.decoder_channels", [16, 8], "seg.decoder_channels: must have exactly 5 items, got 2"),
    ("data.mask_threshold", DELETE, "data.mask_threshold: missing; add it under 'data:' (a number in (0, 1]"),
    ("gan.lamda_l1", 100, "gan.lamda_l1: unknown key; did you mean gan.lambda_l1?"),
    ("gan.mask_threshold", 0.3, "gan.mask_threshold: unknown key; did you mean data.mask_threshold?"),
    ("phantom.count", 40, "phantom.count: the phantom makes 30 positive images (count x positive_fraction) but "
     "max(sizes) + data.test_size = 48"),
    ("report.gate", ["real+pastee"], "report.gate[0]: 'real+pastee' must be a condition other than R and the "
     "primary's variant 'dfgan'; did you mean real+paste?"),
    ("report.primary_sizes", [24, 50], "report.primary_sizes: [50] are not in sizes [24]"),
    ("report.equivalence_margin", 0, "report.equivalence_margin: must be a number in (0, 1], got 0"),
    ("seg.min_rounds", 0, "seg.min_rounds: must be an integer >= 1, got 0"),
    ("gan.extra_sizes", [24], "gan.extra_seeds: is empty while gan.extra_sizes is not"),
]


@pytest.mark.parametrize("key, value, expected", BAD_PARAMS, ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD_PARAMS])
def test_a_bad_param_stops_the_stage_with_one_line_before_any_work(
    key: str, value: Any, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    params = demo_params()
    mutate(params, key, value)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run_stage(lambda: prepare_stage.main(["--params", "bad.yaml"]))
    assert exit_info.value.code == INPUT_ERROR_EXIT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: bad.yaml: {expected}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # no data/, no metrics/, nothing half-written


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    params = demo_params()
    params["gan"]["lambda_l1"] = -1
    params["seg"]["epochs"] = 0
    del params["report"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError) as error:
        load_params(tmp_path / "bad.yaml")
    assert [line.split(": ")[1] for line in error.value.lines()] == ["gan.lambda_l1", "seg.epochs", "report"]


# ----------------------------------------------------------------------------------------------------------------
# Every stage checks the params first; tracebacks only on request


STAGE_COMMANDS = [
    ["stages.phantom"],
    ["stages.prepare"],
    ["stages.fid_stats", "--split", "test"],
    ["stages.train_gan", "--size", "24", "--variant", "dfgan", "--seed", "0"],
    ["stages.synthesize", "--size", "24", "--variant", "dfgan", "--seed", "0"],
    ["stages.train_seg", "--size", "24", "--condition", "real", "--aug", "none"],
    ["stages.report"],
    ["stages.check"],
]


def run_module(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=environment, capture_output=True, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("command", STAGE_COMMANDS, ids=[c[0] for c in STAGE_COMMANDS])
def test_every_stage_refuses_bad_params_in_one_line(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    params = demo_params()
    params["data"]["image_size"] = 100
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [command[0], *command[1:]])
    with pytest.raises(SystemExit) as exit_info:
        run_stage(importlib.import_module(command[0]).main)
    assert exit_info.value.code == INPUT_ERROR_EXIT
    assert capsys.readouterr().err == ("error: params.yaml: data.image_size: must be a power of two >= 32, got 100 "
                                       "(e.g. 64 or 256)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.slow
def test_command_line_choices_must_be_in_the_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "params.yaml").write_text((PROJECT_ROOT / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["stages.train_seg", "--size", "24", "--condition", "dfgan3x", "--aug", "none"])
    with pytest.raises(SystemExit) as exit_info:
        run_stage(importlib.import_module("stages.train_seg").main)
    assert exit_info.value.code == INPUT_ERROR_EXIT
    assert capsys.readouterr().err == (
        "error: params.yaml: condition 'dfgan3x' is not trained by these params (they train real, real2x, real+fresh, pix2pix, "
        "dfgan, dfgan2x); see seg.real_conditions, variants and seg.flipped_variants\n"
    )


@pytest.mark.slow
def test_traceback_only_on_request_and_unexpected_errors_keep_theirs(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("sizes: 12\n")
    quiet = run_module(["stages.check"], tmp_path)
    assert quiet.returncode == INPUT_ERROR_EXIT and "Traceback" not in quiet.stderr
    loud = run_module(["stages.check"], tmp_path, DFGAN_TRACEBACK="1")
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "ParamsError" in loud.stderr

    def bug() -> None:
        raise RuntimeError("a bug, not bad input")

    with pytest.raises(RuntimeError, match="a bug"):
        run_stage(bug)


def test_check_reports_missing_data_and_too_few_positives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    params = demo_params()
    params["data"]["raw_dir"] = "data/raw/siim"
    Path("p.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit):
        run_stage(lambda: check_stage.main(["--params", "p.yaml"]))
    assert capsys.readouterr().err == "error: data/raw/siim: raw data directory not found (data.raw_dir)\n"
    dicom = Path("data/raw/siim/dicom-images-train/1/2/1.2.3.dcm")
    dicom.parent.mkdir(parents=True)
    dicom.write_bytes(b"")
    Path("data/raw/siim/train-rle.csv").write_text("ImageId, EncodedPixels\n1.2.3, 5 3\n1.2.4, -1\n")
    with pytest.raises(SystemExit):
        run_stage(lambda: check_stage.main(["--params", "p.yaml"]))
    assert capsys.readouterr().err == ("error: data/raw/siim/train-rle.csv: 1 positive images have a DICOM, but "
                                       "max(sizes) + data.test_size = 48; lower the sizes or the test size\n")


@pytest.mark.slow
def test_dvc_repro_stops_at_the_first_stage_on_bad_params(tmp_path: Path) -> None:
    repo = make_pipeline_repo(tmp_path / "repo", {"seg": {"flipped_variants": ["dfgan", "dfgan3x"]}})
    result = run_cmd(["dvc", "repro"], repo, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "error: params.yaml: seg.flipped_variants[1]: 'dfgan3x' is not a trained GAN variant" in output
    assert "Traceback" not in output
    assert not (repo / "data").exists() and not (repo / "dvc.lock").exists()


# ----------------------------------------------------------------------------------------------------------------
# Pool workers die with their parent


POOL_PARENT = """
import os, sys, time
from dfgan.core.runtime import worker_pool

def hold(_):
    os.write(1, f"{os.getpid()}\\n".encode())  # one write: print() may make two, which two workers can interleave
    time.sleep(120)

pool = worker_pool(2)
futures = [pool.submit(hold, k) for k in range(2)]
time.sleep(120)
"""


def alive(pid: int) -> bool:
    """Running (a zombie awaiting its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_die_within_seconds_of_a_kill_9_of_their_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", POOL_PARENT], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(parent.stdout.readline()) for _ in range(2)]  # type: ignore[union-attr]
        assert all(alive(pid) for pid in workers) and len(set(workers)) == 2
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)


def test_input_errors_are_value_errors_naming_the_culprit() -> None:
    from dfgan.data.dicom_io import DicomError
    from dfgan.data.rle import RLEError
    from dfgan.data.siim import PrepareError

    for error_type in (DicomError, RLEError, PrepareError, ParamsError):
        assert issubclass(error_type, InputError) and issubclass(error_type, ValueError)
    assert ParamsError(["a: one", "b: two"]).lines() == ["a: one", "b: two"]
