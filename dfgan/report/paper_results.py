"""The paper's published Dice scores (Tables 1 and 2), for side-by-side comparison in the report.

These are FACTS from the paper, not tunables: U-Net++ on the SIIM-ACR pneumothorax positives at 256x256, mean ±
standard error. The paper's "R + S" is its proposed augmentation, so it is read as DF-GAN's synthetic images
(the paper does not report Pix2Pix segmentation numbers). Table 2 does not state its classic-augmentation setting;
its 100 R and 100 R + 100 S entries equal Table 1's "classic aug: yes" row, so it is labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER_DATA = "SIIM-ACR, 256x256"
PAPER_LABEL = f"paper ({PAPER_DATA})"


@dataclass(frozen=True)
class PaperDice:
    mean: float
    sem: float


# Table 1: {aug: {size: (R, R + S)}}; aug "none" is the paper's "Classic Aug. no", "classic" its "yes".
TABLE1: dict[str, dict[int, tuple[PaperDice, PaperDice]]] = {
    "none": {
        50: (PaperDice(0.232, 0.021), PaperDice(0.28, 0.033)),
        100: (PaperDice(0.256, 0.015), PaperDice(0.322, 0.01)),
        250: (PaperDice(0.398, 0.009), PaperDice(0.373, 0.007)),
        500: (PaperDice(0.419, 0.003), PaperDice(0.407, 0.012)),
        1000: (PaperDice(0.458, 0.002), PaperDice(0.461, 0.001)),
        2000: (PaperDice(0.498, 0.002), PaperDice(0.504, 0.005)),
    },
    "classic": {
        50: (PaperDice(0.257, 0.009), PaperDice(0.328, 0.025)),
        100: (PaperDice(0.324, 0.038), PaperDice(0.382, 0.008)),
        250: (PaperDice(0.423, 0.011), PaperDice(0.433, 0.007)),
        500: (PaperDice(0.46, 0.002), PaperDice(0.47, 0.004)),
        1000: (PaperDice(0.496, 0.004), PaperDice(0.5, 0.001)),
        2000: (PaperDice(0.53, 0.003), PaperDice(0.532, 0.002)),
    },
}

# Table 2: 100 R, 100 R + 100 S, 100 R + 200 S (the extra 100 S grown from horizontally flipped lesions).
TABLE2_SIZE = 100
TABLE2_AUG = "classic"
TABLE2: tuple[PaperDice, PaperDice, PaperDice] = (
    PaperDice(0.324, 0.038),
    PaperDice(0.382, 0.008),
    PaperDice(0.39, 0.011),
)

PAPER_SIZES: tuple[int, ...] = tuple(sorted(TABLE1["none"]))


def paper_table1(aug: str, size: int) -> tuple[PaperDice, PaperDice] | None:
    """The paper's (R, R + S) at ``size`` with that augmentation setting, or None where the paper has no column."""
    return TABLE1.get(aug, {}).get(size)


def paper_improvement(aug: str) -> dict[int, float]:
    """The paper's relative improvement (R+S - R) / R per size (its Fig. 4), from Table 1."""
    return {size: (rs.mean - r.mean) / r.mean for size, (r, rs) in sorted(TABLE1[aug].items())}
