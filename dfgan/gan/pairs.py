"""The GAN's paired data (Section 2.1): the input x is the disease area (the real image inside its mask, -1 = black
elsewhere; optionally the mask as a second channel), the target y the whole real image; the official paired jitter,
and each epoch's batch order, seeded by (seed, epoch) so that a resumed run replays it.

Shared by the training loop (:mod:`dfgan.gan.training`) and the synthesis stage (:mod:`dfgan.gan.synthesis`).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F


def make_inputs(targets: torch.Tensor, masks: torch.Tensor, mask_channel: bool) -> torch.Tensor:
    """The generator's input: the real pixels inside the mask, -1 (black) elsewhere; plus the mask in [-1, 1]."""
    disease_area = torch.where(masks > 0.5, targets, torch.full_like(targets, -1.0))
    if mask_channel:
        return torch.cat([disease_area, masks * 2.0 - 1.0], dim=1)
    return disease_area


def make_pairs(
    images: np.ndarray, masks: np.ndarray, mask_channel: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and {0,1} masks (n, S, S) -> inputs x (n, C, S, S) and targets y (n, 1, S, S) in [-1, 1]."""
    targets, mask = unit_targets_and_masks(images, masks, device)
    return make_inputs(targets, mask, mask_channel), targets


def unit_targets_and_masks(
    images: np.ndarray, masks: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (n, S, S) -> (n, 1, S, S) tensors on ``device``: images in [-1, 1], masks in {0., 1.}."""
    to_device = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    return uint8_batch_to_unit(to_device(images), to_device(masks))


def uint8_batch_to_unit(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 tensors (n, S, S), wherever they live -> images in [-1, 1] and {0., 1.} masks, (n, 1, S, S) float32.

    The arithmetic of :func:`dfgan.core.imaging.uint8_to_unit`, done where the tensors are: the training subset stays on
    the device as uint8 (a quarter of float32's memory) and each batch is converted there.
    """
    return (images.float() / 127.5 - 1.0).unsqueeze(1), masks.float().unsqueeze(1)


def paired_jitter(
    targets: torch.Tensor, masks: torch.Tensor, load_scale: float, flip: bool, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official paired augmentation: resize to load_scale x S, random crop back to S, random horizontal flip.

    Image and mask get the same crop and flip; the input is built afterwards from the jittered pair, so it stays
    exactly the real pixels inside the (jittered) mask.
    """
    n, _, size, _ = targets.shape
    # Draw every random number whether or not it is used, so the stream does not depend on the settings' branches.
    # Drawn where the generator lives (the data's device, see epoch_generator): no copy and no host sync.
    offsets = torch.randint(0, 1 << 30, (n, 2), generator=generator, device=generator.device)
    flips = torch.rand(n, generator=generator, device=generator.device) < 0.5
    load = int(round(size * load_scale))
    if load > size:
        targets = F.interpolate(targets, size=(load, load), mode="bicubic", align_corners=False).clamp(-1.0, 1.0)
        masks = F.interpolate(masks, size=(load, load), mode="nearest")
        corners = (offsets % (load - size + 1)).to(targets.device)
        targets, masks = crop_batch(targets, corners, size), crop_batch(masks, corners, size)
    if flip:
        flip_mask = flips.to(targets.device).view(n, 1, 1, 1)
        targets = torch.where(flip_mask, targets.flip(-1), targets)
        masks = torch.where(flip_mask, masks.flip(-1), masks)
    return targets, masks


def crop_batch(batch: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """(n, C, L, L) -> (n, C, size, size): sample i cut at its own top-left corner ``corners[i] = (y, x)``.

    Two gathers on the tensors' device (no per-sample Python loop, no host sync); the very values of slicing."""
    n, channels, height, width = batch.shape
    steps = torch.arange(size, device=batch.device)
    rows = (corners[:, 0:1] + steps).view(n, 1, size, 1).expand(n, channels, size, width)
    batch = batch.gather(2, rows)
    cols = (corners[:, 1:2] + steps).view(n, 1, 1, size).expand(n, channels, size, size)
    return batch.gather(3, cols)


def epoch_generator(seed: int, epoch: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of one epoch's batch order and jitter, seeded by (seed, epoch) so a resume replays it.

    It lives on ``device``, the training data's: on a GPU the order and the jitter are drawn there (no copy per
    batch, no sync); on a CPU it is the CPU generator it always was, so CPU results are unchanged. A GPU draws
    other numbers from the same seed than a CPU (a GPU run is exact for its own device, not across devices)."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state) & ((1 << 63) - 1))


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """ceil(n / batch_size) full batches over a fresh permutation; the short last batch is refilled.

    Refilled rather than dropped: topping it up with the first images of this epoch's order keeps every image in
    every epoch, and every batch - so every FID term and every BatchNorm - sees exactly ``batch_size`` images (a
    batch FID of 2 samples would otherwise count as much as one of 16).
    """
    if n < batch_size:
        raise ValueError(f"{n} training images cannot fill a batch of {batch_size}: lower gan.batch_size")
    order = torch.randperm(n, generator=generator, device=generator.device)
    for start in range(0, n, batch_size):
        batch = order[start : start + batch_size]
        if len(batch) < batch_size:
            batch = torch.cat([batch, order[: batch_size - len(batch)]])
        yield batch

