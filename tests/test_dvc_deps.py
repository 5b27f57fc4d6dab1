"""dvc.yaml declares, for every stage, exactly the project modules its entry point imports (directly or not).

A stage whose code changed but whose dvc.yaml deps miss the file would look up to date with a stale result.
The closure is computed statically from ``import`` statements anywhere in a module (function-level imports too),
starting at the ``python -m stages.<name>`` of the stage's ``cmd``. Package ``__init__.py`` files are left out:
they hold no code a stage runs (a docstring and the version).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dfgan", "stages")


def module_file(module: str) -> Path | None:
    """The project file of a dotted module name, or None for a package, a third-party or a missing module."""
    if module.split(".")[0] not in PACKAGES:
        return None
    path = ROOT / (module.replace(".", "/") + ".py")
    return path if path.is_file() else None


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names, including ``from pkg import module`` submodules."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_closure(module: str) -> set[str]:
    """Repository-relative paths of every project file that importing ``module`` can execute."""
    start = module_file(module)
    if start is None:
        raise FileNotFoundError(f"no project module {module}")
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(f for f in map(module_file, imported_modules(path)) if f is not None and f not in seen)
    return {p.relative_to(ROOT).as_posix() for p in seen}


def stage_definitions() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def entry_module(stage: dict) -> str:
    match = re.search(r"python3? -m (stages\.\w+)", stage["cmd"])
    assert match, f"stage cmd is not 'python -m stages.<name>': {stage['cmd']}"
    return match.group(1)


def test_the_closure_follows_function_level_and_from_imports() -> None:
    closure = import_closure("stages.train_gan")
    assert {"stages/train_gan.py", "stages/model_args.py", "dfgan/gan/training.py", "dfgan/gan/fid.py"} <= closure
    assert "dfgan/seg/experiment.py" not in closure
    assert "dfgan/__init__.py" not in closure


@pytest.mark.parametrize("name", sorted(stage_definitions()))
def test_stage_declares_exactly_its_code(name: str) -> None:
    stage = stage_definitions()[name]
    declared = {str(d) for d in stage.get("deps", []) if str(d).startswith(tuple(f"{p}/" for p in PACKAGES))}
    expected = import_closure(entry_module(stage))
    assert declared == expected, (
        f"dvc.yaml stage '{name}': missing {sorted(expected - declared)}, not imported {sorted(declared - expected)}"
    )


# What only the GAN training loop runs: its own module, the step, the checkpoints, the run config and the curves.
LOOP_ONLY = {"dfgan/gan/training.py", "dfgan/gan/step.py", "dfgan/gan/checkpoints.py", "dfgan/gan/config.py",
             "dfgan/core/training_log.py"}


def test_a_change_to_the_gan_training_loop_reruns_no_synthesize_stage() -> None:
    """Synthesis reaches the pairs, the generator, FID and Inception, never the loop: a change to the loop's code
    (or to what only the loop imports) leaves every ``synthesize@*`` stage up to date in ``dvc status``."""
    loop = import_closure("stages.train_gan") - import_closure("stages.synthesize")
    assert LOOP_ONLY <= loop, f"synthesis imports loop code: {sorted(LOOP_ONLY - loop)}"
    synthesize = stage_definitions()["synthesize"]
    declared = {str(d) for d in synthesize["deps"]}
    assert not declared & loop, f"every synthesize@* stage reruns when these change: {sorted(declared & loop)}"
    gan_files = {p for p in import_closure("stages.synthesize") if p.startswith("dfgan/gan/")}
    assert gan_files == {f"dfgan/gan/{name}.py" for name in (
        "synthesis", "synthetic_sets", "pairs", "generator", "networks", "fid", "inception", "inception_net")}
