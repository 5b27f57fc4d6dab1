"""Failed U-Net++ seeds: a run that never learned to segment is its own outcome, not a low Dice hidden in a mean.

A seed **failed** when the model it kept predicts no lesion at all on more than ``empty_share`` of the test images,
or when the kept model is the first round's and scores a test Dice below ``min_dice``: a first round is kept only
when no later round beat its validation Dice, which on these small validation sets happens when the network still
predicted nothing for the rounds that followed (the diagnosis in docs/statistics.md, "Training that does not die").
The two numbers are ``report.failed_empty_share`` and ``report.failed_dice``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

DEFAULT_EMPTY_SHARE, DEFAULT_MIN_DICE = 0.5, 0.1


@dataclass(frozen=True)
class SeedOutcome:
    """What one trained seed shows: its kept round (1-based), the schedule's rounds, test Dice and empty share."""

    best_round: int
    rounds: int
    test_dice: float
    empty_fraction: float

    @property
    def still_improving(self) -> bool:
        """The kept round is the schedule's last: the run was still getting better when its budget ended."""
        return self.best_round == self.rounds


def is_failed(outcome: SeedOutcome, empty_share: float = DEFAULT_EMPTY_SHARE,
              min_dice: float = DEFAULT_MIN_DICE) -> bool:
    return outcome.empty_fraction > empty_share or (outcome.best_round == 1 and outcome.test_dice < min_dice)


def failed_seeds(outcomes: Sequence[SeedOutcome], empty_share: float = DEFAULT_EMPTY_SHARE,
                 min_dice: float = DEFAULT_MIN_DICE) -> list[bool]:
    """One flag per seed: :func:`is_failed`."""
    return [is_failed(o, empty_share, min_dice) for o in outcomes]
