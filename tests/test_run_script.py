"""run.sh, the README's two commands: the project venv, installing only when requirements.txt changed, and the
one-line stop where the base Python cannot make virtual environments. A stand-in requirements.txt keeps it quick."""

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
    return tmp_path


def test_venv_is_made_once_and_reinstalled_only_when_requirements_change(project: Path) -> None:
    # The stand-in environment has no pytest, so the final step fails; what matters here is what came before it.
    first = run_script(project, "test").stdout
    assert "creating the virtual environment .venv" in first and "installing requirements.txt" in first
    assert (project / ".venv/requirements.sha256").is_file()

    second = run_script(project, "test").stdout
    assert "creating" not in second and "installing" not in second
    assert "requirements.txt unchanged since its last install" in second

    (project / "requirements.txt").write_text("# nothing to install, now in other words\n")
    third = run_script(project, "test").stdout
    assert "creating" not in third and "installing requirements.txt" in third


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
