"""Classic augmentation for U-Net++ training, applied jointly to an image and its mask.

The image is wrapped as ``tv_tensors.Image`` and the mask as ``tv_tensors.Mask``, so torchvision's v2 transforms
draw ONE set of random parameters for both and resample the mask with nearest-neighbour: the mask stays aligned
with the image and stays binary.

:func:`build_batch_classic_augmentation` is the same family of operations for a whole batch already on the device
(one affine matrix and one elastic field per sample, one ``grid_sample``), so that a GPU can be fed without CPU
worker processes. Its draws are not those of the per-sample path: see its docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2

from dfgan.core.settings import ClassicAugmentation, NoAugmentation

# The value of a black pixel in the network's image scale (dfgan.core.imaging.uint8_to_unit maps 0 -> -1), used to fill
# the corners that rotation and elastic distortion uncover; a mid-grey fill would look like tissue.
BLACK = -1.0

JointTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# (images (B,1,H,W) float, masks (B,1,H,W), generator on their device) -> (images, masks), dtypes and device kept.
BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def identity_augmentation(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """No augmentation (``aug: none``)."""
    return image, mask


def classic_transform(classic: ClassicAugmentation, image_size: int, fill: float = BLACK) -> v2.Compose:
    """The torchvision v2 pipeline: flip, small rotation, random resized crop back to size, elastic distortion."""
    ratio = classic.crop_ratio_max
    fills = {tv_tensors.Image: fill, tv_tensors.Mask: 0}
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(p=classic.hflip_p),
            v2.RandomRotation(degrees=classic.rotate_degrees, fill=fills),
            v2.RandomResizedCrop(
                size=(image_size, image_size),
                scale=(classic.crop_scale_min, 1.0),
                ratio=(1.0 / ratio, ratio),
                antialias=True,
            ),
            v2.RandomApply(
                [
                    v2.ElasticTransform(
                        alpha=classic.elastic_alpha,
                        sigma=classic.elastic_sigma,
                        fill=fills,
                    )
                ],
                p=classic.elastic_p,
            ),
        ]
    )


def build_classic_augmentation(classic: ClassicAugmentation, image_size: int, fill: float = BLACK) -> JointTransform:
    """A callable ``(image (1,H,W) float, mask (1,H,W) integer) -> (image, mask)`` applying one joint random draw
    of ``seg.augmentations.classic``. Outputs are plain tensors of the input dtypes.
    """
    transform = classic_transform(classic, image_size, fill)

    def augment(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out_image, out_mask = transform(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return out_image.as_subclass(torch.Tensor), out_mask.as_subclass(torch.Tensor)

    return augment


def build_augmentation(
    augmentation: NoAugmentation | ClassicAugmentation, image_size: int, fill: float = BLACK
) -> JointTransform:
    """``seg.augmentations.none`` -> the identity; ``classic`` -> :func:`build_classic_augmentation`."""
    if isinstance(augmentation, ClassicAugmentation):
        return build_classic_augmentation(augmentation, image_size, fill)
    return identity_augmentation


# ---------------------------------------------------------------------------------------------------------------------
# The same operations, batched on the device
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchDraw:
    """The random parameters of one batch, one entry per sample (all tensors on the batch's device).

    ``crop`` is (top, left, height, width) in input pixels, as torchvision's ``resized_crop`` takes it (here real
    numbers: the crop may start and end between pixels). ``displacement`` is the elastic field of the output,
    (B, H_out, W_out, 2) in ``grid_sample`` units (x then y; zero for a sample drawn without elastic distortion),
    or None when no sample has one.
    """

    flip: torch.Tensor  # (B,) bool
    angle: torch.Tensor  # (B,) degrees, counter-clockwise as torchvision's rotate
    crop: torch.Tensor  # (B, 4) float
    displacement: torch.Tensor | None


def gaussian_kernel_size(sigma: float) -> int:
    """torchvision ``ElasticTransform``'s blur kernel: ``int(8 * sigma + 1)``, made odd."""
    size = int(8 * sigma + 1)
    return size + 1 if size % 2 == 0 else size


def smooth_noise(noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (B, C, H, W) per channel, as torchvision's ``gaussian_blur`` (same kernel size and weights,
    reflect padding), done as two 1-D convolutions. Falls back to replicate padding when the image is no larger than
    the kernel's half-width (reflect padding is undefined there; torchvision fails)."""
    if sigma <= 0:
        return noise
    size = gaussian_kernel_size(sigma)
    half = (size - 1) * 0.5
    x = torch.linspace(-half, half, size, device=noise.device, dtype=noise.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels, pad = noise.shape[1], size // 2
    mode = "reflect" if pad < min(noise.shape[-2:]) else "replicate"
    padded = F.pad(noise, [pad, pad, pad, pad], mode=mode)
    padded = F.conv2d(padded, kernel.view(1, 1, 1, size).expand(channels, 1, 1, size), groups=channels)
    return F.conv2d(padded, kernel.view(1, 1, size, 1).expand(channels, 1, size, 1), groups=channels)


def _uniform(
    shape: tuple[int, ...], low: float, high: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=device) * (high - low) + low


def draw_batch_classic(
    classic: ClassicAugmentation,
    batch: int,
    in_size: tuple[int, int],
    out_size: tuple[int, int],
    generator: torch.Generator,
    device: torch.device,
) -> BatchDraw:
    """Independent draws for ``batch`` samples from ``generator``: flip with p = hflip_p; angle uniform in
    [-rotate_degrees, rotate_degrees]; crop area a fraction uniform in [crop_scale_min, 1] of the input, aspect
    ratio log-uniform in [1/crop_ratio_max, crop_ratio_max], each side clipped to the image, position uniform;
    with p = elastic_p an elastic field (uniform noise in [-1, 1], Gaussian-smoothed with elastic_sigma, times
    elastic_alpha / side)."""
    height, width = in_size
    flip = torch.rand(batch, generator=generator, device=device) < classic.hflip_p
    degrees = classic.rotate_degrees
    angle = _uniform((batch,), -degrees, degrees, generator, device)
    scale = _uniform((batch,), classic.crop_scale_min, 1.0, generator, device)
    log_ratio = math.log(classic.crop_ratio_max)
    ratio = torch.exp(_uniform((batch,), -log_ratio, log_ratio, generator, device))
    area = scale * (height * width)
    crop_w = torch.sqrt(area * ratio).clamp(max=width)
    crop_h = torch.sqrt(area / ratio).clamp(max=height)
    position = torch.rand((batch, 2), generator=generator, device=device)
    top, left = position[:, 0] * (height - crop_h), position[:, 1] * (width - crop_w)
    crop = torch.stack([top, left, crop_h, crop_w], dim=1)

    displacement = None
    elastic_p, alpha = classic.elastic_p, classic.elastic_alpha
    if elastic_p > 0 and alpha != 0:
        out_h, out_w = out_size
        apply = (torch.rand(batch, generator=generator, device=device) < elastic_p).float()
        noise = torch.rand((batch, 2, out_h, out_w), generator=generator, device=device) * 2 - 1
        field = smooth_noise(noise, classic.elastic_sigma)
        # Filled on the device (torch.tensor([...], device=...) would copy from host memory per batch): the same
        # float32 values.
        scale_xy = torch.full((1, 2, 1, 1), alpha / out_w, device=device)
        scale_xy[:, 1] = alpha / out_h
        displacement = (field * scale_xy * apply.view(batch, 1, 1, 1)).permute(0, 2, 3, 1)
    return BatchDraw(flip=flip, angle=angle, crop=crop, displacement=displacement)


def affine_matrices(draw: BatchDraw, in_size: tuple[int, int]) -> torch.Tensor:
    """(B, 2, 3) matrices for ``F.affine_grid`` (normalized coordinates, align_corners=False) mapping an output
    point to the input point that flip, then rotation about the centre, then the resized crop, sample there.

    With p_out in [-1, 1]^2: the crop gives q = c + s * p_out (c, s: the crop's centre and half-size in normalized
    units); rotation (done in pixel units, so non-square images rotate rigidly) r = P^-1 R P q; flip x -> -x."""
    height, width = in_size
    top, left, crop_h, crop_w = draw.crop.unbind(1)
    dtype, device = draw.crop.dtype, draw.crop.device
    centre = torch.stack([(2 * left + crop_w) / width - 1, (2 * top + crop_h) / height - 1], dim=1)  # (B, 2)
    half = torch.stack([crop_w / width, crop_h / height], dim=1)
    radians = torch.deg2rad(draw.angle.to(dtype))
    cos, sin = torch.cos(radians), torch.sin(radians)
    aspect = height / width  # P = diag(W/2, H/2): P^-1 R P = [[cos, -sin*H/W], [sin*W/H, cos]] for y pointing down
    rotation = torch.stack(
        [torch.stack([cos, -sin * aspect], dim=1), torch.stack([sin / aspect, cos], dim=1)], dim=1
    )  # (B, 2, 2): counter-clockwise on screen, as torchvision's rotate(angle)
    sign = torch.where(draw.flip, -1.0, 1.0).to(dtype)
    flip = torch.ones(len(sign), 2, 1, device=device, dtype=dtype)
    flip[:, 0, 0] = sign
    linear = flip * rotation  # flip the x row
    theta = torch.cat([linear * half.unsqueeze(1), (linear @ centre.unsqueeze(2))], dim=2)
    return theta


def apply_batch_draw(
    images: torch.Tensor, masks: torch.Tensor, draw: BatchDraw, out_size: tuple[int, int], fill: float = BLACK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample images (bilinear, uncovered area = ``fill``) and masks (nearest, uncovered = 0) on one grid."""
    batch, channels = images.shape[:2]
    theta = affine_matrices(draw, tuple(images.shape[-2:]))
    grid = F.affine_grid(theta, [batch, channels, *out_size], align_corners=False)
    if draw.displacement is not None:
        # torchvision distorts the cropped output: sample it at p + d(p), i.e. the input at A(p + d) = A p + L d.
        grid = grid + torch.einsum("bij,bhwj->bhwi", theta[:, :, :2], draw.displacement)
    image_grid = grid.to(images.dtype)
    out_images = F.grid_sample(images - fill, image_grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out_images = out_images + fill
    float_masks = masks if masks.is_floating_point() else masks.float()
    out_masks = F.grid_sample(
        float_masks, grid.to(float_masks.dtype), mode="nearest", padding_mode="zeros", align_corners=False
    )
    return out_images, out_masks.to(masks.dtype)


def build_batch_classic_augmentation(
    classic: ClassicAugmentation, image_size: int, fill: float = BLACK
) -> BatchTransform:
    """A callable ``(images (B,1,H,W) float, masks (B,1,H,W), generator) -> (images, masks)`` of size
    ``image_size``, the classic augmentation applied to a batch on its own device with pure tensor operations.

    Why: the per-sample torchvision path (:func:`build_classic_augmentation`) costs milliseconds of CPU per image,
    which a GPU step outruns unless several DataLoader worker processes augment in parallel; this keeps the GPU fed
    from images resident on it, without workers. Every sample gets its own draw (:func:`draw_batch_classic`), all
    from ``generator`` (on the tensors' device), so a seeded generator repeats the batch exactly on one device.
    Flip, rotation and the resized crop are composed into one affine matrix per sample, the elastic field is added
    to that grid, and the image and the mask are each resampled ONCE (image bilinear, filled with ``fill``; mask
    nearest, filled with 0, so it stays binary and aligned with the image).

    It is NOT bit-identical to the per-sample path and draws differently, so switching to it is a different
    augmentation, not a drop-in replacement for results already computed. Known differences from the torchvision
    pipeline: one resampling instead of up to four (torchvision rotates the image with nearest-neighbour, then
    resizes the crop with antialiasing, then distorts; here everything is one bilinear interpolation, without
    antialias, which matters only when ``image_size`` is below the input size); the crop's size and position are
    real numbers and a side that would exceed the image is clipped instead of redrawn (torchvision's rejection loop
    redraws up to 10 times, then takes a centre crop); the uncovered border blends to ``fill`` as
    ``bilinear(image - fill) + fill`` rather than torchvision's ``mask * (bilinear(image) - fill) + fill``. The
    elastic field follows torchvision's ``ElasticTransform`` convention exactly: uniform noise in [-1, 1] per pixel
    and axis, blurred with torchvision's kernel (size ``int(8 sigma + 1)`` made odd, reflect padding), scaled by
    ``alpha / W`` (x) and ``alpha / H`` (y) of the OUTPUT in ``grid_sample``'s normalized units (i.e. at most
    ``alpha / 2`` pixels), applied to the cropped output (so it is mapped through the crop and rotation).
    """

    def augment(
        images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if images.dim() != 4 or masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:]:
            raise ValueError(f"expected images and masks (B,C,H,W) of one batch and size, got {tuple(images.shape)} "
                             f"and {tuple(masks.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"images must be floating point, got {images.dtype}")
        if generator.device.type != images.device.type:
            raise ValueError(f"the generator is on {generator.device}, the images on {images.device}")
        out_size = (image_size, image_size)
        draw = draw_batch_classic(
            classic, images.shape[0], tuple(images.shape[-2:]), out_size, generator, images.device
        )
        return apply_batch_draw(images, masks, draw, out_size, fill)

    return augment


def seeded_batch_augmentation(
    classic: ClassicAugmentation, image_size: int, seed: int, device: torch.device, fill: float = BLACK
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """:func:`build_batch_classic_augmentation` bound to a generator on ``device`` seeded by ``seed``: a callable
    ``(images, masks) -> (images, masks)`` for batches already on the device (``seg.augment_on: device``)."""
    transform = build_batch_classic_augmentation(classic, image_size, fill)
    generator = torch.Generator(device=device).manual_seed(seed)
    return lambda images, masks: transform(images, masks, generator)
