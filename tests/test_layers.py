"""The shape of dfgan/: one subpackage per part of the pipeline, each importing only the parts below it, no cycles.

core <- data <- gan <- seg <- report (a part may import itself and the parts before it); orchestrate imports only
core. Imports are read statically, function-level and ``TYPE_CHECKING`` ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("core", "data", "gan", "seg", "report")
ALLOWED = {part: set(LAYERS[: k + 1]) for k, part in enumerate(LAYERS)} | {"orchestrate": {"core", "orchestrate"}}


def modules() -> dict[str, Path]:
    """Every dfgan module by dotted name (package __init__ files under the package's name)."""
    found = {}
    for path in sorted((ROOT / "dfgan").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The dfgan modules ``path`` imports (``from package import module`` resolved to the module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name in known and name.count(".") >= 2}


GRAPH = {name: imports(path, modules()) for name, path in modules().items()}


def part(module: str) -> str:
    return module.split(".")[1]


def test_every_module_lives_in_a_part_of_the_pipeline() -> None:
    loose = [name for name in GRAPH if name != "dfgan" and (name.count(".") < 1 or part(name) not in ALLOWED)]
    assert not loose, f"modules outside the parts {sorted(ALLOWED)}: {loose}"
    assert not [name for name in GRAPH if name.count(".") == 1 and name.split(".")[1] not in ALLOWED]


@pytest.mark.parametrize("module", sorted(name for name in GRAPH if name.count(".") >= 2))
def test_a_part_imports_only_the_parts_below_it(module: str) -> None:
    wrong = sorted(target for target in GRAPH[module] if part(target) not in ALLOWED[part(module)])
    assert not wrong, f"{module} ({part(module)}) imports {wrong}: allowed {sorted(ALLOWED[part(module)])}"


def test_no_import_cycle() -> None:
    """Depth-first search for a back edge; names the cycle it finds."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(path[path.index(target):] + [target])}")
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_the_library_imports_no_stage_benchmark_or_test() -> None:
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            targets = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [t for t in targets if t.split(".")[0] in ("stages", "benchmarks", "tests")], name


@pytest.mark.parametrize("package", sorted(name for name, path in modules().items() if path.name == "__init__.py"))
def test_package_files_hold_no_code(package: str) -> None:
    """tests/test_dvc_deps.py leaves __init__.py out of a stage's deps: that is sound while they run nothing."""
    tree = ast.parse(modules()[package].read_text())
    body = tree.body[1:] if tree.body and isinstance(tree.body[0], ast.Expr) else tree.body
    assert all(isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__version__"] for node in body)
