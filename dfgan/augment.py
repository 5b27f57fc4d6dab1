"""Classic augmentation for U-Net++ training, applied jointly to an image and its mask.

The image is wrapped as ``tv_tensors.Image`` and the mask as ``tv_tensors.Mask``, so torchvision's v2 transforms
draw ONE set of random parameters for both and resample the mask with nearest-neighbour: the mask stays aligned
with the image and stays binary.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

AUG_NONE = "none"
AUG_CLASSIC = "classic"
AUG_CHOICES = (AUG_NONE, AUG_CLASSIC)

# The value of a black pixel in the network's image scale (dfgan.imaging.uint8_to_unit maps 0 -> -1), used to fill
# the corners that rotation and elastic distortion uncover; a mid-grey fill would look like tissue.
BLACK = -1.0

JointTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def identity_augmentation(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """No augmentation (``aug: none``)."""
    return image, mask


def classic_transform(params_aug: dict[str, Any], image_size: int, fill: float = BLACK) -> v2.Compose:
    """The torchvision v2 pipeline: flip, small rotation, random resized crop back to size, elastic distortion."""
    ratio = float(params_aug["crop_ratio_max"])
    fills = {tv_tensors.Image: fill, tv_tensors.Mask: 0}
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(p=float(params_aug["hflip_p"])),
            v2.RandomRotation(degrees=float(params_aug["rotate_degrees"]), fill=fills),
            v2.RandomResizedCrop(
                size=(image_size, image_size),
                scale=(float(params_aug["crop_scale_min"]), 1.0),
                ratio=(1.0 / ratio, ratio),
                antialias=True,
            ),
            v2.RandomApply(
                [
                    v2.ElasticTransform(
                        alpha=float(params_aug["elastic_alpha"]),
                        sigma=float(params_aug["elastic_sigma"]),
                        fill=fills,
                    )
                ],
                p=float(params_aug["elastic_p"]),
            ),
        ]
    )


def build_classic_augmentation(params_aug: dict[str, Any], image_size: int, fill: float = BLACK) -> JointTransform:
    """A callable ``(image (1,H,W) float, mask (1,H,W) integer) -> (image, mask)`` applying one joint random draw.

    ``params_aug`` is ``seg.augmentations.classic`` (hflip_p, rotate_degrees, crop_scale_min, crop_ratio_max,
    elastic_p, elastic_alpha, elastic_sigma). Outputs are plain tensors of the input dtypes.
    """
    transform = classic_transform(params_aug, image_size, fill)

    def augment(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out_image, out_mask = transform(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return out_image.as_subclass(torch.Tensor), out_mask.as_subclass(torch.Tensor)

    return augment


def build_augmentation(aug: str, params_aug: dict[str, Any], image_size: int, fill: float = BLACK) -> JointTransform:
    """``none`` -> the identity; ``classic`` -> :func:`build_classic_augmentation` (``params_aug`` is
    ``seg.augmentations.<aug>``)."""
    if aug == AUG_NONE:
        return identity_augmentation
    if aug == AUG_CLASSIC:
        return build_classic_augmentation(params_aug, image_size, fill)
    raise ValueError(f"unknown augmentation '{aug}'; expected one of {AUG_CHOICES}")
