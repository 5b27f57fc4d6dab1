"""dvc.yaml declares, for every stage, exactly the params its code can read (as test_dvc_deps.py does for code).

A key the code reads but dvc.yaml does not declare would leave the stage's results looking up to date after the key
changed. Every stage turns the settings into what it hands the library in one function, ``inputs(settings, args)``
(its ``main`` uses the settings for nothing else but checking its command line, which this test checks too). Here
``inputs`` runs, for every stage of dvc.yaml expanded over every params profile, with the stage's own command line,
on settings that record each key read; a section handed over whole counts as all its keys. Per stage, every key read
must be declared, and every declared key read by some matrix item of some profile. A section in dvc.yaml
(``- phantom``) stands for all its keys.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
from typing import Any

import pytest

from dfgan.core.rules import Section
from dfgan.core.settings import SCHEMA, settings_from
from dvc_pipeline import PROFILES, StageInstance, expand, load_profile, stage_definitions
from test_dvc_deps import ROOT, import_closure

# The keys with a value: every key but the sections, and the sections without keys (seg.augmentations.none).
LEAVES = [key for key, rule in SCHEMA.items()
          if not isinstance(rule, Section) or not any(other.startswith(key + ".") for other in SCHEMA)]
# What a stage's main may hand its settings to, besides inputs: the checks of its command line against the lists.
ARGUMENT_CHECKS = {"check_model_args", "require_condition", "require_listed"}


def keys_under(dotted: str) -> set[str]:
    """The keys a params entry names: itself, or every key of a section."""
    found = {key for key in LEAVES if key == dotted or key.startswith(dotted + ".")}
    assert found, f"{dotted} is not a params key"
    return found


class Traced:
    """A settings object or section that records the dotted key of every value read through it."""

    def __init__(self, value: Any, path: str, read: set[str]) -> None:
        self._value, self._path, self._read = value, path, read

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._value, name)
        dotted = f"{self._path}.{name}" if self._path else name
        if dataclasses.is_dataclass(value):
            return Traced(value, dotted, self._read)
        self._read.add(dotted)
        return value


def handed_over(value: Any) -> set[str]:
    """The keys of every section that ``value`` (what ``inputs`` returned) holds whole."""
    if isinstance(value, Traced):
        return keys_under(value._path)
    if dataclasses.is_dataclass(value):
        return set().union(*(handed_over(getattr(value, f.name)) for f in dataclasses.fields(value)))
    if isinstance(value, (tuple, list)):
        return set().union(*(handed_over(item) for item in value))
    if isinstance(value, dict):
        return set().union(*(handed_over(item) for item in value.values()))
    return set()


def keys_read(stage: StageInstance, params: dict[str, Any]) -> set[str]:
    module = importlib.import_module(stage.module)
    read: set[str] = set()
    result = module.inputs(Traced(settings_from(params), "", read), module.parse_args(stage.argv))
    return read | handed_over(result)


def keys_declared(stage: StageInstance) -> set[str]:
    return set().union(*(keys_under(entry) for entry in stage.params)) if stage.params else set()


def test_tracing_sees_keys_read_and_sections_handed_over() -> None:
    params = load_profile("params.yaml")
    read: set[str] = set()
    traced = Traced(settings_from(params), "", read)
    assert traced.gan.lr == params["gan"]["lr"] and read == {"gan.lr"}
    assert handed_over((traced.report, {"a": traced.seg.augmentations.none})) == {
        "report.sample_count", "report.primary", "report.level", "report.min_units", "report.primary_sizes",
        "report.gate", "report.power", "report.equivalence_margin", "report.failed_dice", "report.failed_empty_share",
        "seg.augmentations.none",
    }
    assert keys_under("seg.augmentations") == keys_under("seg.augmentations.classic") | {"seg.augmentations.none"}


def twins(name: str) -> dict[str, Any]:
    """The stage and those sharing its command and params (``train_gan_extra`` is ``train_gan`` over more seeds,
    through a YAML merge key): a declared key must be read by one of them in some profile."""
    definitions = stage_definitions()
    mine = definitions[name]
    return {other: d for other, d in definitions.items()
            if d.get("cmd") == mine.get("cmd") and d.get("params") == mine.get("params")}


@pytest.mark.parametrize("name", sorted(stage_definitions()))
def test_stage_declares_exactly_the_params_its_code_reads(name: str) -> None:
    read_anywhere: set[str] = set()
    declared_anywhere: set[str] = set()
    for profile in PROFILES:
        params = load_profile(profile)
        for stage in expand(params, twins(name)):
            read, declared = keys_read(stage, params), keys_declared(stage)
            assert read <= declared, (
                f"dvc.yaml {stage.name} ({profile}): its code reads {sorted(read - declared)}, which its params do "
                "not declare: a change there would leave its results looking up to date"
            )
            read_anywhere |= read
            declared_anywhere |= declared
    assert declared_anywhere == read_anywhere, (
        f"dvc.yaml {name}: params declared but read by no matrix item of any profile: "
        f"{sorted(declared_anywhere - read_anywhere)}"
    )


@pytest.mark.parametrize("module", sorted({stage.module for stage in expand(load_profile("params.yaml"))}))
def test_main_hands_its_settings_only_to_inputs_and_the_argument_checks(module: str) -> None:
    """Settings read in main itself would escape the trace above."""
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    parents = {id(child): node for node in ast.walk(main) for child in ast.iter_child_nodes(node)}

    def called(node: ast.AST) -> str | None:
        return getattr(node.func, "id", None) if isinstance(node, ast.Call) else None

    for node in ast.walk(main):
        if called(node) == "load_settings":
            parent = parents[id(node)]
            assigned = isinstance(parent, ast.Assign) and [getattr(t, "id", None) for t in parent.targets] == ["settings"]
            assert assigned or called(parent) == "inputs", f"{module}: load_settings(...) goes elsewhere than inputs"
        if isinstance(node, ast.Name) and node.id == "settings" and isinstance(node.ctx, ast.Load):
            parent = parents[id(node)]
            assert called(parent) in ARGUMENT_CHECKS | {"inputs"} and node in parent.args, (
                f"{module}: main reads its settings outside inputs() (line {node.lineno})"
            )


@pytest.mark.parametrize("module", sorted({stage.module for stage in expand(load_profile("params.yaml"))}))
def test_the_library_never_reads_the_params_file_itself(module: str) -> None:
    for path in sorted(import_closure(module) - {"dfgan/core/params_file.py"}):
        if path.startswith("dfgan/"):
            names = {n.id for n in ast.walk(ast.parse((ROOT / path).read_text())) if isinstance(n, ast.Name)}
            assert not names & {"load_params", "load_settings"}, f"{path} loads the params itself"
