"""The report's statistics: paired differences with calibrated intervals, their MDE and equivalence (``paired``),
multiplicity by Holm and by the gated graph (``multiplicity``), what a synthetic image is worth (``ratio``), and the
simulations that measure their error rates (``simulate``; ``python -m dfgan.report.intervals`` prints them)."""
