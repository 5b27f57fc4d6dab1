"""Classic augmentation keeps the mask on the lesion, keeps it binary, and is a no-op for 'none'."""

from __future__ import annotations

import numpy as np
import torch

from dfgan.core.settings import ClassicAugmentation, NoAugmentation
from dfgan.seg.augment import BLACK, build_augmentation, build_classic_augmentation

SIZE = 64
STRONG = ClassicAugmentation(
    hflip_p=0.5,
    rotate_degrees=30.0,
    crop_scale_min=0.5,
    crop_ratio_max=1.3,
    elastic_p=1.0,
    elastic_alpha=60.0,
    elastic_sigma=4.0,
)


def lesion_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A black image whose bright pixels are exactly the mask: an off-centre ellipse plus a bar (asymmetric)."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    mask = ((yy - 22) ** 2 / 12**2 + (xx - 40) ** 2 / 8**2 <= 1) | ((yy > 44) & (yy < 52) & (xx > 8) & (xx < 30))
    image = np.where(mask, 1.0, BLACK).astype(np.float32)
    return torch.from_numpy(image)[None], torch.from_numpy(mask.astype(np.uint8))[None]


def test_joint_augmentation_keeps_the_mask_on_the_bright_pixels() -> None:
    torch.manual_seed(0)
    augment = build_classic_augmentation(STRONG, SIZE)
    image, mask = lesion_pair()
    ious, changed = [], 0
    for _ in range(40):
        out_image, out_mask = augment(image, mask)
        assert out_image.shape == image.shape and out_mask.shape == mask.shape
        assert out_image.dtype == image.dtype and out_mask.dtype == mask.dtype
        assert set(out_mask.unique().tolist()) <= {0, 1}  # nearest-neighbour: still binary
        bright = out_image[0] > 0.0
        on = out_mask[0].bool()
        ious.append((bright & on).sum().item() / max((bright | on).sum().item(), 1))
        assert out_image[0][on].mean() > 0.5 and out_image[0][~on].mean() < -0.8
        changed += not torch.equal(out_mask, mask)
    # Bilinear image vs nearest mask differ only along the lesion's edge (about 1 pixel): IoU stays high, while a
    # mask left unflipped or unrotated would fall far below (the control below).
    assert min(ious) > 0.8, ious
    assert changed >= 35  # the geometry really moved
    unflipped_mask, flipped_image = mask[0].bool(), image[0].flip(-1) > 0.0
    assert (flipped_image & unflipped_mask).sum() / (flipped_image | unflipped_mask).sum() < 0.3


def test_augmentation_changes_the_image_and_repeats_under_a_seed() -> None:
    image, mask = lesion_pair()
    augment = build_classic_augmentation(STRONG, SIZE)
    torch.manual_seed(1)
    first = augment(image, mask)
    torch.manual_seed(1)
    second = augment(image, mask)
    torch.testing.assert_close(first[0], second[0])
    torch.testing.assert_close(first[1], second[1])
    assert not torch.equal(first[0], image)


def test_none_is_the_identity() -> None:
    image, mask = lesion_pair()
    out_image, out_mask = build_augmentation(NoAugmentation(), SIZE)(image, mask)
    assert out_image is image and out_mask is mask
    assert build_augmentation(STRONG, SIZE)(image, mask)[0] is not image
