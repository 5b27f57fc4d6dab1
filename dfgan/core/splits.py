"""How many of a training size's images are held out for validation (pure Python: the params check uses it too)."""

from __future__ import annotations


def validation_count(n_pool: int, val_fraction: float) -> int:
    """round(val_fraction * n), at least 1 when the fraction is positive, and always leaving one image to train on."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0.0:
        return 0
    if n_pool < 2:
        raise ValueError(f"cannot carve a validation split from {n_pool} training image(s)")
    return int(min(max(1, round(val_fraction * n_pool)), n_pool - 1))
