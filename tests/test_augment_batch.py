"""The batched on-device classic augmentation: shapes, identity cases, per-sample draws, alignment, fill, and the
torchvision conventions it claims to follow (rotation sense, crop, elastic field)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from dfgan.core.settings import ClassicAugmentation
from dfgan.seg.augment import (
    BLACK, BatchDraw, apply_batch_draw, build_batch_classic_augmentation, draw_batch_classic, gaussian_kernel_size,
    smooth_noise,
)

SIZE, BATCH = 32, 8
IDENTITY = ClassicAugmentation(
    hflip_p=0.0, rotate_degrees=0.0, crop_scale_min=1.0, crop_ratio_max=1.0, elastic_p=0.0, elastic_alpha=20.0,
    elastic_sigma=3.0,
)
STRONG = ClassicAugmentation(
    hflip_p=0.5, rotate_degrees=30.0, crop_scale_min=0.6, crop_ratio_max=1.3, elastic_p=1.0, elastic_alpha=20.0,
    elastic_sigma=3.0,
)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_batch(batch: int = BATCH, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = generator(seed)
    images = torch.rand(batch, 1, SIZE, SIZE, generator=g) * 2 - 1
    masks = (torch.rand(batch, 1, SIZE, SIZE, generator=g) > 0.7).to(torch.uint8)
    return images, masks


def square_pair(batch: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Black images whose bright off-centre square is exactly the mask."""
    mask = torch.zeros(batch, 1, SIZE, SIZE, dtype=torch.uint8)
    mask[..., 6:20, 10:26] = 1
    return torch.where(mask.bool(), 1.0, BLACK), mask


def test_shapes_dtypes_device_and_binary_masks() -> None:
    images, masks = random_batch()
    augment = build_batch_classic_augmentation(STRONG, SIZE)
    for mask_dtype in (torch.uint8, torch.int64, torch.float32):
        out_images, out_masks = augment(images, masks.to(mask_dtype), generator())
        assert out_images.shape == images.shape and out_masks.shape == masks.shape
        assert out_images.dtype == torch.float32 and out_masks.dtype == mask_dtype
        assert out_images.device == images.device and out_masks.device == images.device
        assert set(out_masks.unique().tolist()) <= {0, 1}
    # The output size is image_size, whatever the input size.
    out_images, out_masks = build_batch_classic_augmentation(STRONG, 16)(images, masks, generator())
    assert out_images.shape == out_masks.shape == (BATCH, 1, 16, 16)


def test_identity_parameters_give_the_input() -> None:
    images, masks = random_batch()
    out_images, out_masks = build_batch_classic_augmentation(IDENTITY, SIZE)(images, masks, generator())
    torch.testing.assert_close(out_images, images, atol=1e-5, rtol=0)
    assert torch.equal(out_masks, masks)


def test_certain_flip_is_a_horizontal_flip() -> None:
    images, masks = random_batch()
    out_images, out_masks = build_batch_classic_augmentation(replace(IDENTITY, hflip_p=1.0), SIZE)(
        images, masks, generator()
    )
    torch.testing.assert_close(out_images, torch.flip(images, [-1]), atol=1e-5, rtol=0)
    assert torch.equal(out_masks, torch.flip(masks, [-1]))


def test_a_seed_repeats_and_seeds_differ() -> None:
    images, masks = random_batch()
    augment = build_batch_classic_augmentation(STRONG, SIZE)
    first, second, other = (augment(images, masks, generator(s)) for s in (3, 3, 4))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])


def test_every_sample_draws_on_its_own() -> None:
    images = torch.zeros(64, 1, SIZE, SIZE)
    images[..., : SIZE // 2] = 1.0  # bright left half: a flip moves it right
    masks = torch.zeros(64, 1, SIZE, SIZE, dtype=torch.uint8)
    out_images, _ = build_batch_classic_augmentation(replace(IDENTITY, hflip_p=0.5), SIZE)(images, masks, generator())
    flipped = out_images[:, 0, 0, -1] > 0.5
    assert 10 < int(flipped.sum()) < 54
    torch.testing.assert_close(out_images[flipped], torch.flip(images[flipped], [-1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(out_images[~flipped], images[~flipped], atol=1e-5, rtol=0)
    # With the full augmentation, no two samples of identical inputs come out alike.
    strong, _ = build_batch_classic_augmentation(STRONG, SIZE)(images, masks, generator())
    assert len({tuple(s.flatten().round(decimals=3).tolist()) for s in strong}) == 64


def test_the_mask_stays_on_the_bright_pixels() -> None:
    images, masks = square_pair()
    out_images, out_masks = build_batch_classic_augmentation(STRONG, SIZE)(images, masks, generator(1))
    assert not torch.equal(out_masks, masks)  # the geometry moved
    agreement = ((out_images > 0) == out_masks.bool()).float().mean(dim=(1, 2, 3))
    assert agreement.min() >= 0.95, agreement


def test_rotation_fills_the_uncovered_corners() -> None:
    images, masks = torch.ones(BATCH, 1, SIZE, SIZE), torch.ones(BATCH, 1, SIZE, SIZE, dtype=torch.uint8)
    params = replace(IDENTITY, rotate_degrees=45)
    out_images, out_masks = build_batch_classic_augmentation(params, SIZE)(images, masks, generator())
    # The same generator state gives the same draw: a rotation beyond 10 degrees uncovers the corner pixel.
    angles = draw_batch_classic(params, BATCH, (SIZE, SIZE), (SIZE, SIZE), generator(), images.device).angle
    rotated = angles.abs() > 10
    assert rotated.sum() >= BATCH // 2
    corners = out_images[rotated, :, 0, 0]
    torch.testing.assert_close(corners, torch.full_like(corners, BLACK), atol=1e-5, rtol=0)
    assert (out_masks[rotated, :, 0, 0] == 0).all() and (out_masks[..., SIZE // 2, SIZE // 2] == 1).all()
    torch.testing.assert_close(out_images[..., SIZE // 2, SIZE // 2], torch.ones(BATCH, 1), atol=1e-5, rtol=0)
    out_images, _ = build_batch_classic_augmentation(params, SIZE, fill=0.25)(images, masks, generator())
    corners = out_images[rotated, :, 0, 0]
    torch.testing.assert_close(corners, torch.full_like(corners, 0.25), atol=1e-5, rtol=0)


def smooth_image(size: int = 48) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    return (torch.sin(xx / 5) * torch.cos(yy / 7) + 0.3 * xx / size)[None, None]


@pytest.mark.parametrize(("flip", "angle", "crop"), [(False, 20.0, (0, 0, 48, 48)), (True, -15.0, (0, 0, 48, 48)),
                                                      (False, 0.0, (4, 10, 40, 36))])
def test_one_draw_matches_torchvision_flip_rotate_and_crop(flip: bool, angle: float, crop: tuple) -> None:
    image = smooth_image()
    draw = BatchDraw(torch.tensor([flip]), torch.tensor([angle]), torch.tensor([crop], dtype=torch.float32), None)
    ours, _ = apply_batch_draw(image, torch.zeros_like(image), draw, (48, 48), fill=BLACK)
    theirs = TF.horizontal_flip(image[0]) if flip else image[0]
    theirs = TF.rotate(theirs, angle, interpolation=TF.InterpolationMode.BILINEAR, fill=[BLACK])
    theirs = TF.resized_crop(theirs, *crop, [48, 48], antialias=True)
    torch.testing.assert_close(ours[0, :, 8:-8, 8:-8], theirs[:, 8:-8, 8:-8], atol=1e-4, rtol=0)


def test_elastic_field_follows_torchvision() -> None:
    sigma, alpha, size = 3.0, 20.0, 48
    assert gaussian_kernel_size(sigma) == 25 and gaussian_kernel_size(4.0) == 33
    noise = torch.rand(1, 2, size, size, generator=generator()) * 2 - 1
    k = gaussian_kernel_size(sigma)
    blurred = torch.cat([TF.gaussian_blur(noise[:, i : i + 1], [k, k], [sigma, sigma]) for i in (0, 1)], dim=1)
    torch.testing.assert_close(smooth_noise(noise, sigma), blurred, atol=1e-6, rtol=0)
    displacement = (blurred * alpha / size).permute(0, 2, 3, 1)
    identity = torch.tensor([[0.0, 0.0, size, size]])
    draw = BatchDraw(torch.tensor([False]), torch.tensor([0.0]), identity, displacement)
    image = smooth_image(size)
    ours, _ = apply_batch_draw(image, torch.zeros_like(image), draw, (size, size), fill=BLACK)
    theirs = TF.elastic(image[0], displacement, fill=[BLACK])
    torch.testing.assert_close(ours[0, :, 8:-8, 8:-8], theirs[:, 8:-8, 8:-8], atol=1e-4, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_with_a_cuda_generator() -> None:
    images, masks = (t.cuda() for t in random_batch())
    out_images, out_masks = build_batch_classic_augmentation(STRONG, SIZE)(
        images, masks, torch.Generator(device="cuda").manual_seed(0)
    )
    assert out_images.is_cuda and out_masks.is_cuda and out_masks.dtype == torch.uint8
    assert set(out_masks.unique().tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="generator"):
        build_batch_classic_augmentation(STRONG, SIZE)(images, masks, generator())
