"""The value rules of the params schema (integer, number, choice, text, list, ...) and the allowed values.

A rule checks one YAML value (:meth:`problem`: None, or what is wrong with it, in words a user can act on) and gives
its typed form (:meth:`typed`). The settings dataclasses of :mod:`dfgan.core.settings` attach one rule to each
field; that is the schema. This module imports nothing heavy.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

# Allowed values, which the library uses too (the home of these tuples).
# pix2pix: no FID loss; dfgan: FID loss of weight gan.lambda_fid; dfgan_paper: FID loss of weight gan.lambda_fid_paper
# (the paper's 1), so one run can hold both weights side by side.
VARIANTS = ("pix2pix", "dfgan", "dfgan_paper")
FID_MODES = ("differentiable", "detached")
GAN_MODES = ("vanilla", "lsgan")
NORMS = ("batch", "instance", "none")
AMP_DTYPES = ("bfloat16", "float16")
MISSING_DICOM_POLICIES = ("report", "error")
DATA_FORMATS = ("siim", "folder")
MISSING_MASK_POLICIES = ("negative", "error")
RLE_MODES = ("auto", "relative", "absolute")
REAL = "real"
DOUBLED_SUFFIX = "2x"  # '<variant>2x': N more synthetic images grown from the flipped lesions
# Conditions without a GAN: R; the controls 'real2x' (the real images listed twice), 'real+flip' (+ their mirror images),
# 'real+paste' (+ each real lesion pasted into another training image) and 'real+paste2x' (+ the flipped lesions too);
# and the oracle 'real+fresh' (+ as many fresh real training positives as a GAN adds: what a perfect GAN could give).
REAL_CONDITIONS = (REAL, REAL + DOUBLED_SUFFIX, "real+flip", "real+paste", "real+paste2x", "real+fresh")
SCHEDULES = ("steps", "epochs")
AUGMENT_ON = ("loader", "device")  # seg.augment_on: classic augmentation per sample in the DataLoader, or per batch
# torch.compile modes a profile may name; max-autotune runs without CUDA graphs: replaying G and D as CUDA graphs
# (torch.compile reduce-overhead) failed on the GAN step on an H200 (benchmarks/RESULTS.md)
COMPILE_MODES = ("off", "default", "max-autotune")
MIN_IMAGE_SIZE = 32
RLE_GRID_PATTERN = r"native|[1-9][0-9]*x[1-9][0-9]*"
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:[0-9]+)?"


def describe(value: Any) -> str:
    """How a YAML value reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _quoted_number_hint(value: Any) -> str:
    """PyYAML reads ``1e-12`` (no dot) and quoted numbers as text: say how to write them as numbers."""
    if not isinstance(value, str):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    if re.fullmatch(r"\s*[-+]?[0-9]+e[-+]?[0-9]+\s*", value, re.IGNORECASE):
        mantissa, exponent = value.strip().lower().split("e")
        return f" (YAML reads {value} as text: write {mantissa}.0e{exponent})"
    return f" (write {number:g} without quotes)"


def _range_text(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


@dataclass(frozen=True)
class Int:
    """An integer (YAML ``true`` and ``"4"`` are not), optionally bounded, optionally a power of two."""

    min: int | None = None
    max: int | None = None
    power_of_two: bool = False
    help: str = ""

    def expects(self) -> str:
        kind = "a power of two" if self.power_of_two else "an integer"
        return kind + _range_text(self.min, self.max)

    def typed(self, value: Any) -> int:
        return value

    def problem(self, value: Any) -> str | None:
        wrong_type = isinstance(value, bool) or not isinstance(value, int)
        out_of_range = not wrong_type and (
            (self.min is not None and value < self.min) or (self.max is not None and value > self.max)
        )
        not_power = not wrong_type and self.power_of_two and (value < 1 or value & (value - 1))
        if wrong_type or out_of_range or not_power:
            return f"must be {self.expects()}, got {describe(value)}{_quoted_number_hint(value)}"
        return None


@dataclass(frozen=True)
class Float:
    """A number (an integer is fine; ``true`` and ``"0.5"`` are not), optionally bounded; typed as a float.

    ``as_written`` keeps the number as the file writes it (``100`` stays an int): for the keys whose value the GAN's
    run fingerprint and ``generator.json`` record (:class:`dfgan.gan.config.GanConfig`), which have always stored
    them so (an int is a valid float for the type checker).
    """

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    help: str = ""
    as_written: bool = False

    def typed(self, value: Any) -> float:
        return value if self.as_written else float(value)

    def expects(self) -> str:
        return "a number" + _range_text(self.min, self.max, self.min_open, self.max_open)

    def problem(self, value: Any) -> str | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok and self.min is not None:
            ok = value > self.min if self.min_open else value >= self.min
        if ok and self.max is not None:
            ok = value < self.max if self.max_open else value <= self.max
        return None if ok else f"must be {self.expects()}, got {describe(value)}{_quoted_number_hint(value)}"


@dataclass(frozen=True)
class Bool:
    help: str = ""

    def expects(self) -> str:
        return "true or false"

    def typed(self, value: Any) -> bool:
        return value

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else f"must be true or false, got {describe(value)}"


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]
    help: str = ""

    def expects(self) -> str:
        return "one of " + ", ".join(self.options)

    def typed(self, value: Any) -> str:
        return value

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and value in self.options:
            return None
        close = difflib.get_close_matches(str(value), self.options, n=1) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"must be {self.expects()}, got {describe(value)}{hint}"


@dataclass(frozen=True)
class Switch(Choice):
    """A Choice whose first option ("off") may also be YAML's bare ``off``, which PyYAML reads as false; typed as
    that option."""

    def typed(self, value: Any) -> str:
        return self.options[0] if value is False else value

    def problem(self, value: Any) -> str | None:
        return None if value is False else super().problem(value)


@dataclass(frozen=True)
class Text:
    """A non-empty string, optionally matching a regular expression (the whole string)."""

    pattern: str | None = None
    example: str = ""
    help: str = ""

    def expects(self) -> str:
        return f"text like {self.example}" if self.example else "non-empty text"

    def typed(self, value: Any) -> str:
        return value

    def problem(self, value: Any) -> str | None:
        ok = isinstance(value, str) and value.strip() != ""
        if ok and self.pattern is not None:
            ok = re.fullmatch(self.pattern, value) is not None
        return None if ok else f"must be {self.expects()}, got {describe(value)}"


@dataclass(frozen=True)
class Nullable:
    inner: Any
    help: str = ""

    def expects(self) -> str:
        return f"null or {self.inner.expects()}"

    def typed(self, value: Any) -> Any:
        return None if value is None else self.inner.typed(value)

    def problem(self, value: Any) -> str | None:
        return None if value is None or self.inner.problem(value) is None else f"must be {self.expects()}, got {describe(value)}"


@dataclass(frozen=True)
class ListOf:
    """A YAML list of items that each pass ``item``; optionally unique, strictly increasing or of a fixed length."""

    item: Any
    min_len: int = 1
    length: int | None = None
    unique: bool = False
    increasing: bool = False
    help: str = ""

    def expects(self) -> str:
        size = f"{self.length} " if self.length is not None else ("" if self.min_len <= 1 else f"{self.min_len}+ ")
        order = "strictly increasing " if self.increasing else ("distinct " if self.unique else "")
        return f"a list of {size}{order}items, each {self.item.expects()}"

    def typed(self, value: Any) -> tuple[Any, ...]:
        """A tuple: settings are frozen, lists too."""
        return tuple(self.item.typed(item) for item in value)

    def problem(self, value: Any) -> str | None:
        found = self.problems(value)
        return f"{found[0][0]}: {found[0][1]}" if found else None

    def problems(self, value: Any) -> list[tuple[str, str]]:
        """(key suffix, message) pairs: ``("", ...)`` for the whole list, ``("[k]", ...)`` for item k."""
        if not isinstance(value, list):
            return [("", f"must be {self.expects()}, got {describe(value)}")]
        if self.length is not None and len(value) != self.length:
            return [("", f"must have exactly {self.length} items, got {len(value)}")]
        if len(value) < self.min_len:
            return [("", f"must have at least {self.min_len} item(s), got {len(value)}")]
        items = [(f"[{k}]", self.item.problem(item)) for k, item in enumerate(value)]
        found = [(suffix, problem) for suffix, problem in items if problem]
        if found:
            return found
        if self.increasing and any(b <= a for a, b in zip(value, value[1:])):
            return [("", f"must be strictly increasing, got {value}")]
        if self.unique and len({repr(v) for v in value}) != len(value):
            return [("", f"must not repeat items, got {value}")]
        return []


@dataclass(frozen=True)
class Section:
    """A mapping whose keys are the schema keys below it (it may be empty, like ``seg.augmentations.none``); typed as
    its settings dataclass (:mod:`dfgan.core.settings`)."""

    help: str = ""

    def expects(self) -> str:
        return "a mapping"

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, dict) else f"must be a mapping, got {describe(value)}"


SEED = Int(min=0, help="random seed")
WORKERS = Int(min=1, help="worker processes")
DEVICE = Text(DEVICE_PATTERN, "auto, cpu, cuda or cuda:0", help="torch device")
PROBABILITY = Float(0.0, 1.0)
