"""dfgan: the library behind the DF-GAN pipeline.

Every DVC stage in ``stages/`` is a thin entry point that reads ``params.yaml`` and calls into this package.
"""

__version__ = "0.1.0"
