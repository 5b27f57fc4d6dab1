"""Reading ``params.yaml``, the single home of every tunable number: checked against the schema
(:mod:`dfgan.core.validation`) and turned into typed settings (:mod:`dfgan.core.settings`) once, here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dfgan.core.errors import InputError, ParamsError
from dfgan.core.settings import Settings, settings_from
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


def load_settings(path: str | Path = DEFAULT_PARAMS) -> Settings:
    """The params file as typed settings, after every check of :func:`load_params`."""
    return settings_from(load_params(path))


def require_listed(settings: Settings, key: str, value: Any, source: str | Path = DEFAULT_PARAMS) -> None:
    """Refuse a command-line choice (a size, a variant, a GAN seed) that the params list under ``key`` lacks."""
    listed: Any = settings
    for part in key.split("."):
        listed = getattr(listed, part)
    if value not in listed:
        raise InputError(f"{source}: {value!r} is not in {key} {list(listed)}; add it there or pick one of those")
