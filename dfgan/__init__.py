"""dfgan: the library behind the DF-GAN pipeline, one subpackage per part of it, in pipeline order.

- :mod:`dfgan.core`: what every part shares (the params and their typed settings, artefact paths, errors, devices);
- :mod:`dfgan.data`: the phantom and the SIIM-ACR / folder intake -> ``data/prepared``;
- :mod:`dfgan.gan`: FID statistics, pix2pix / DF-GAN training and the synthetic sets;
- :mod:`dfgan.seg`: the U-Net++ training sets, fit and multi-seed experiment;
- :mod:`dfgan.report`: paired statistics, tables and figures;
- :mod:`dfgan.orchestrate`: running the DVC stages in parallel or as queued experiments.

A part imports only the parts above it in this list (``orchestrate`` only ``core``). Every DVC stage in ``stages/``
is a thin entry point that reads ``params.yaml`` and calls into this package.
"""

__version__ = "0.1.0"
