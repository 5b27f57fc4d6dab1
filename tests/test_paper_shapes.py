"""The paper profile's shapes on a CPU: 256 px, batch 16, resnet34 U-Net++ (random weights), the real Inception.

One training step of each GAN variant, one U-Net++ step and one synthesis batch, through the code the stages run
(``benchmarks.throughput`` builds them with ``build_models``/``train_step``, ``generate`` and ``build_training_model``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from benchmarks.throughput import random_fid_term, time_gan_step, time_seg_step, time_synthesis_batch
from dfgan.core.params_file import load_settings
from dfgan.core.settings import with_values
from dfgan.gan.inception import load_inception
from dfgan.seg.config import SegConfig

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


@pytest.mark.slow  # about half a minute on 2 idle cores
def test_one_step_of_each_model_kind_at_the_paper_shapes() -> None:
    paper = load_settings(ROOT / "params_paper.yaml")
    assert paper.data.image_size == 256 and paper.gan.batch_size == 16
    assert paper.seg.encoder == "resnet34" and paper.seg.batch_size == 16
    # On this CPU, and nothing downloads.
    params = with_values(paper, {"gan.device": "cpu", "seg.device": "cpu", "seg.encoder_weights": None})
    extractor = load_inception(CPU, params.fid.inception_path)
    fid_term = random_fid_term(extractor, CPU)
    seconds = {
        variant: time_gan_step(params, variant, CPU, fid_term, repeats=1, warmup=0) for variant in ("pix2pix", "dfgan")
    }
    seconds["synthesis batch"] = time_synthesis_batch(params, CPU, extractor, repeats=1, warmup=0)
    seconds["U-Net++"] = time_seg_step(SegConfig.of(params.seg, "none"), 256, CPU, repeats=1, warmup=0)
    print("paper shapes on this CPU, seconds:", {k: round(v, 2) for k, v in seconds.items()})
    assert all(math.isfinite(v) and v > 0 for v in seconds.values())
