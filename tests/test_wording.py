"""The wording rule (docs/statistics.md): a difference that is not significant is "not detected (this design detects
>= MDE with 80% power)", never worded as evidence of absence; only an equivalence test may call two conditions alike.
Every page a reader sees is checked: the README, docs/, every committed report and the report of this checkout."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dfgan.report.questions import verdict

ROOT = Path(__file__).resolve().parents[1]
# Absence of evidence worded as evidence of absence, and equality claimed without an equivalence test.
BANNED = re.compile(r"no effect|does not help|doesn't help|do as well|does as well|as good as|neither GAN helps|"
                    r"does not beat", re.IGNORECASE)


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "metrics").rglob("*.md"))]
    return [page for page in found if page.is_file()]


def test_no_page_claims_an_absence_it_did_not_test() -> None:
    offending = [f"{page.relative_to(ROOT)}:{number}: {line.strip()[:120]}"
                 for page in pages() for number, line in enumerate(page.read_text().splitlines(), start=1)
                 if BANNED.search(line)]
    assert not offending, "worded as evidence of absence (docs/statistics.md, the wording rule):\n" + "\n".join(offending)


def test_the_rule_catches_the_old_sentences() -> None:
    for sentence in ("The run finds no effect of DF-GAN images on Dice.", "neither GAN helps over R",
                     "DF-GAN does not beat Pix2Pix", "The GAN-free controls do as well as the GAN images"):
        assert BANNED.search(sentence)


@pytest.mark.parametrize(("delta", "expected"), [
    ({"interval": True, "tested": True, "significant": False, "equivalent": False, "mde": 0.123, "family": "primary"},
     "not detected (this design detects ≥ 0.123 with 80% power)"),
    ({"interval": True, "tested": True, "significant": False, "equivalent": True, "mde": 0.02, "family": "gate"},
     "equivalent within ±0.05"),
    ({"interval": True, "tested": True, "significant": True, "equivalent": False, "mde": 0.02, "family": "oracle"},
     "detected"),
    ({"interval": True, "tested": False, "significant": False, "equivalent": False, "mde": 0.1, "family": "gate"},
     "not tested: the gate at this size is closed (exploratory only)"),
    ({"interval": False, "reason": "1 GAN seed; an interval needs at least 3", "family": "primary"},
     "no interval (1 GAN seed; an interval needs at least 3)"),
])
def test_every_verdict_follows_the_rule(delta: dict, expected: str) -> None:
    text = verdict(delta, margin=0.05, power=0.8)
    assert text == expected and not BANNED.search(text)
    assert np.isfinite(delta.get("mde", 0.0))
