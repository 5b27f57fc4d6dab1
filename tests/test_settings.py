"""The typed settings: one dataclass per params section, the schema derived from them, values typed once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dfgan.core.params_file import load_params, load_settings
from dfgan.core.rules import Float, ListOf, Nullable, Section, Switch
from dfgan.core.settings import SCHEMA, GanSettings, Settings, settings_from, with_values
from dfgan.gan.config import DERIVED, GanConfig

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("params.yaml", "params_evidence.yaml", "params_paper.yaml")


def value_at(settings: Settings, dotted: str) -> object:
    value: object = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def value_at_dict(params: dict, dotted: str) -> object:
    node: object = params
    for part in dotted.split("."):
        node = node[part]  # type: ignore[index]
    return node


@pytest.mark.parametrize("profile", PROFILES)
def test_every_key_has_its_typed_form(profile: str) -> None:
    settings, params = load_settings(ROOT / profile), load_params(ROOT / profile)
    for dotted, rule in SCHEMA.items():
        value, written = value_at(settings, dotted), value_at_dict(params, dotted)
        if isinstance(rule, Section):
            assert dataclasses.is_dataclass(value), dotted
        elif isinstance(rule, ListOf) or (isinstance(rule, Nullable) and isinstance(rule.inner, ListOf)):
            assert (value is None and written is None) or (isinstance(value, tuple) and list(value) == written), dotted
        elif isinstance(rule, Float) or (isinstance(rule, Nullable) and isinstance(rule.inner, Float)):
            inner = rule if isinstance(rule, Float) else rule.inner
            assert value == written and (value is None or type(value) is (type(written) if inner.as_written
                                                                           else float)), dotted
        elif isinstance(rule, Switch):
            assert value == ("off" if written is False else written), dotted
        else:
            assert value == written and type(value) is type(written), dotted


def test_numbers_written_as_is_are_exactly_those_the_gan_fingerprint_records() -> None:
    """GanConfig's fingerprint and generator.json have always stored these gan.* numbers as the file writes them."""
    as_written = {key for key, rule in SCHEMA.items() if isinstance(rule, Float) and rule.as_written}
    floats_in_config = {f"gan.{f.name}" for f in dataclasses.fields(GanConfig)
                        if f.name not in DERIVED and isinstance(SCHEMA[f"gan.{f.name}"], Float)}
    assert as_written == floats_in_config
    assert type(load_settings(ROOT / "params.yaml").gan.lambda_l1) is int  # `lambda_l1: 100`


def test_the_schema_is_the_settings_fields() -> None:
    top = [f.name for f in dataclasses.fields(Settings)]
    assert [key for key in SCHEMA if "." not in key] == top
    assert [key.split(".", 1)[1] for key in SCHEMA if key.startswith("gan.")] == [
        f.name for f in dataclasses.fields(GanSettings)]


def test_a_missing_key_is_named_and_with_values_changes_a_copy() -> None:
    params = load_params(ROOT / "params.yaml")
    del params["seg"]["lr"]
    with pytest.raises(KeyError, match="lr"):
        settings_from(params)
    settings = load_settings(ROOT / "params.yaml")
    changed = with_values(settings, {"gan.batch_size": 2, "sizes": [4], "seg.augmentations.classic.hflip_p": 1})
    assert (changed.gan.batch_size, changed.sizes, changed.seg.augmentations.classic.hflip_p) == (2, (4,), 1.0)
    assert settings.gan.batch_size == 8 and changed.seg.lr == settings.seg.lr
    with pytest.raises(KeyError, match="gan has no key|GanSettings has no key"):
        with_values(settings, {"gan.nope": 1})
