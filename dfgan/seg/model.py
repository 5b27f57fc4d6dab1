"""The U-Net++ of the segmentation experiments, its BCE + Dice loss, and its evaluation by per-image Dice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import segmentation_models_pytorch as smp
import torch
from torch import nn

from dfgan.core.imaging import uint8_to_unit
from dfgan.core.speed import compile_in_place, prefer_channels_last
from dfgan.seg.config import SegConfig
from dfgan.seg.dice import dice_per_image
from dfgan.seg.encoder_weights import model_with_encoder_file


def build_model(
    encoder: str,
    encoder_weights: str | None,
    in_channels: int = 1,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    encoder_weights_path: str | Path | None = None,
) -> nn.Module:
    """U-Net++ with one logit channel (no activation); ``encoder_weights: null`` never touches the network.

    ``decoder_channels`` defaults to smp's; the nested decoder dominates the cost at small image sizes.
    ``encoder_weights_path`` (``seg.encoder_weights_path``): the encoder's pretrained weights from this file instead of
    a download (``encoder_weights`` is then only their label), for machines without network; the layouts it accepts
    and the alternative (a pre-filled Hugging Face cache) are in :mod:`dfgan.seg.encoder_weights`.
    """

    def build(channels: int, weights: str | None = None) -> nn.Module:
        return smp.UnetPlusPlus(
            encoder_name=encoder,
            encoder_weights=weights,
            in_channels=channels,
            classes=1,
            decoder_channels=tuple(int(c) for c in decoder_channels),
        )

    if encoder_weights_path is None:
        return build(in_channels, encoder_weights)
    return model_with_encoder_file(build, in_channels, encoder_weights_path)


def build_training_model(config: SegConfig, device: torch.device) -> nn.Module:
    """The U-Net++ of the ``seg`` section on ``device``, as training uses it: channels_last on CUDA, compiled when
    ``seg.compile`` asks."""
    model = build_model(config.encoder, config.encoder_weights, decoder_channels=config.decoder_channels,
                        encoder_weights_path=config.encoder_weights_path).to(device)
    return compile_in_place(prefer_channels_last(model, device), config.compile)


class BceDiceLoss(nn.Module):
    """bce_weight * BCE-with-logits + dice_weight * soft Dice loss (on the sigmoid of the logits)."""

    def __init__(self, bce_weight: float, dice_weight: float) -> None:
        super().__init__()
        self.bce_weight = float(bce_weight)
        self.dice_weight = float(dice_weight)
        self.bce = nn.BCEWithLogitsLoss()
        self.dice = smp.losses.DiceLoss(mode="binary", from_logits=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce_weight * self.bce(logits, target) + self.dice_weight * self.dice(logits, target)



# ---------------------------------------------------------------------------------------------------------------------
# Prediction and evaluation
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """Per-image results on one image set."""

    dice: np.ndarray  # float64 (n,)
    empty: np.ndarray  # bool (n,): the model predicted no foreground pixel at all
    pred_fraction: np.ndarray  # float64 (n,): share of pixels predicted foreground

    @property
    def mean_dice(self) -> float:
        return float(self.dice.mean()) if len(self.dice) else float("nan")


@torch.no_grad()
def predict_masks(
    model: nn.Module, images: np.ndarray, threshold: float, device: torch.device, batch_size: int
) -> np.ndarray:
    """Binary predictions (N, H, W) bool: sigmoid(logits) > threshold, in eval mode, batch by batch."""
    model.eval()
    predictions = []
    for start in range(0, len(images), batch_size):
        batch = uint8_to_unit(images[start : start + batch_size]).to(device)
        probabilities = torch.sigmoid(model(batch))
        predictions.append((probabilities > threshold).squeeze(1).cpu().numpy())
    if not predictions:
        return np.zeros((0,) + tuple(images.shape[1:]), dtype=bool)
    return np.concatenate(predictions)


def evaluate(
    model: nn.Module,
    images: np.ndarray,
    masks: np.ndarray,
    threshold: float,
    device: torch.device,
    batch_size: int = 16,
) -> Evaluation:
    """Per-image Dice, empty-prediction flags and predicted foreground fractions of ``model`` on (images, masks)."""
    predictions = predict_masks(model, images, threshold, device, batch_size)
    return Evaluation(
        dice=dice_per_image(predictions, np.asarray(masks)),
        empty=~predictions.reshape(len(predictions), -1).any(axis=1),
        pred_fraction=predictions.reshape(len(predictions), -1).mean(axis=1).astype(np.float64),
    )

