"""Reading ``params.yaml``: the single home of every tunable number, checked against :mod:`dfgan.core.validation`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dfgan.core.errors import InputError, ParamsError
from dfgan.core.validation import validate_params

DEFAULT_PARAMS = Path("params.yaml")


def load_params(path: str | Path = DEFAULT_PARAMS, validate: bool = True) -> dict[str, Any]:
    """Load a params file as a plain nested dict; unless ``validate`` is False, refuse it when it breaks the schema
    (a :class:`ParamsError` listing every problem, one line each)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: params file not found")
    try:
        with path.open() as f:
            params = yaml.safe_load(f)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}:{where} not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(params, dict):
        raise InputError(f"{path}: expected a mapping at the top level, got {type(params).__name__}")
    if validate:
        problems = validate_params(params, str(path))
        if problems:
            raise ParamsError(problems)
    return params


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    """One top-level section of the params, naming the key when it is absent."""
    if name not in params or not isinstance(params[name], dict):
        raise KeyError(f"params.yaml has no section '{name}'")
    return params[name]


def require_listed(params: dict[str, Any], key: str, value: Any, source: str | Path = DEFAULT_PARAMS) -> None:
    """Refuse a command-line choice (a size, a variant, a condition) that the params list under ``key`` lacks."""
    listed: Any = params
    for part in key.split("."):
        listed = listed[part]
    if value not in listed:
        raise InputError(f"{source}: {value!r} is not in {key} {list(listed)}; add it there or pick one of those")


def variant_lambda_fid(gan: dict[str, Any], variant: str) -> float:
    """The FID-loss weight of a variant: 0 for the pix2pix baseline whatever the params say, ``gan.lambda_fid`` for
    dfgan, ``gan.lambda_fid_paper`` (the paper's 1) for dfgan_paper."""
    if variant == "pix2pix":
        return 0.0
    return float(gan["lambda_fid_paper"] if variant == "dfgan_paper" else gan["lambda_fid"])
