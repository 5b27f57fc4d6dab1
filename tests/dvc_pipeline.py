"""dvc.yaml expanded as DVC expands it for one params profile: every ``matrix`` item a stage of its own, every
``${...}`` filled in from the profile or the item (what ``dvc stage list`` shows, without running DVC)."""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The three profiles, and the evidence run v2 (its params in today's schema): the one that trains dfgan_paper.
PROFILES = ("params.yaml", "params_evidence.yaml", "params_paper.yaml", "docs/evidence/phantom-64px-50-100-v2/params.yaml")
CODE_PREFIXES = ("dfgan/", "stages/")
REFERENCE = re.compile(r"\$\{([^}]+)\}")


def load_profile(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())


def lookup(context: dict[str, Any], dotted: str) -> Any:
    node: Any = context
    for part in dotted.strip().split("."):
        node = node[part]
    return node


def interpolate(value: Any, context: dict[str, Any]) -> Any:
    """``${a.b}`` alone -> the value itself (a list stays a list); inside text -> its string form."""
    if not isinstance(value, str):
        return value
    whole = REFERENCE.fullmatch(value)
    if whole:
        return lookup(context, whole.group(1))
    return REFERENCE.sub(lambda match: str(lookup(context, match.group(1))), value)


def entry_path(entry: Any) -> str:
    """An ``outs``/``deps``/``metrics``/``plots`` entry: a path, or a one-key mapping of a path to its options."""
    return next(iter(entry)) if isinstance(entry, dict) else str(entry)


@dataclass(frozen=True)
class StageInstance:
    """One stage as DVC runs it: ``train_gan@12-pix2pix-0``."""

    name: str
    definition: str  # the dvc.yaml key, e.g. train_gan
    item: dict[str, Any]
    module: str  # the ``python -m`` module of its cmd
    argv: list[str]  # the cmd's arguments after the module
    deps: frozenset[str]  # data deps only (code deps: tests/test_dvc_deps.py)
    writes: frozenset[str]  # outs, metrics and plots
    params: tuple[str, ...]


def stage_definitions() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def expand(params: dict[str, Any], definitions: dict[str, dict[str, Any]] | None = None) -> list[StageInstance]:
    """Every stage of dvc.yaml for ``params``."""
    stages = []
    for key, stage in (definitions if definitions is not None else stage_definitions()).items():
        matrix = stage.get("matrix")
        if matrix is None:
            combos: list[dict[str, Any]] = [{}]
        else:
            axes = {axis: interpolate(values, params) for axis, values in matrix.items()}
            combos = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
        for item in combos:
            context = {**params, "item": item}
            name = key if matrix is None else f"{key}@{'-'.join(str(v) for v in item.values())}"
            words = shlex.split(interpolate(stage["cmd"], context))
            assert words[:2] == ["python", "-m"], f"{key}: cmd is not 'python -m ...': {stage['cmd']}"
            paths = {
                kind: {str(interpolate(entry_path(e), context)) for e in stage.get(kind, [])}
                for kind in ("deps", "outs", "metrics", "plots")
            }
            stages.append(StageInstance(
                name=name,
                definition=key,
                item=item,
                module=words[2],
                argv=words[3:],
                deps=frozenset(p for p in paths["deps"] if not p.startswith(CODE_PREFIXES)),
                writes=frozenset(paths["outs"] | paths["metrics"] | paths["plots"]),
                params=tuple(str(interpolate(p, context)) for p in stage.get("params", [])),
            ))
    return stages
