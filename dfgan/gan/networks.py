"""pix2pix networks, modelled on the official PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix, networks.py).

- :class:`UnetGenerator`: U-Net with ``num_downs`` stride-2 downsamplings (``unet_256`` = 8), skip connections,
  dropout in the ``num_downs - 5`` intermediate ngf*8 blocks (three at 256), Tanh output in [-1, 1].
- :class:`NLayerDiscriminator`: the PatchGAN (``n_layers`` 3 = the 70x70 "basic" discriminator).
- :class:`GANLoss`: vanilla (BCE with logits) or lsgan (MSE) against all-real / all-fake targets.

Reference sizes: 1 in / 1 out channel at 256 -> 54,407,809 generator parameters; the PatchGAN on a 2-channel
input (ndf 64, n_layers 3) -> 2,764,609.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import torch
from torch import nn

NormLayer = Callable[[int], nn.Module]

MIN_IMAGE_SIZE = 32  # the U-Net's five fixed levels (outermost, ngf..ngf*8, innermost) need 2**5 pixels


# ----------------------------------------------------------------------------------------------------------------------
# Normalisation and initialisation


def get_norm_layer(norm_type: str = "batch") -> NormLayer:
    """``batch`` (affine, running stats), ``instance`` (no affine, no running stats) or ``none``."""
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "none":
        return lambda _channels: nn.Identity()
    raise ValueError(f"unknown norm layer '{norm_type}' (expected batch, instance or none)")


def _uses_bias(norm_layer: NormLayer) -> bool:
    """Convs before a BatchNorm need no bias (its shift does the job); before InstanceNorm (no affine) they do."""
    func = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return func is nn.InstanceNorm2d


def init_weights(net: nn.Module, init_gain: float) -> nn.Module:
    """The official 'normal' init: conv/linear weights N(0, gain), BatchNorm weights N(1, gain), biases 0."""

    def init_module(m: nn.Module) -> None:
        name = m.__class__.__name__
        if hasattr(m, "weight") and ("Conv" in name or "Linear" in name):
            nn.init.normal_(m.weight, 0.0, init_gain)
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias, 0.0)
        elif "BatchNorm2d" in name:
            nn.init.normal_(m.weight, 1.0, init_gain)
            nn.init.constant_(m.bias, 0.0)

    with torch.no_grad():
        net.apply(init_module)
    return net


# ----------------------------------------------------------------------------------------------------------------------
# Generator


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down -> submodule -> up, concatenated with its input (except the outermost level).

    As in the official code the down path's LeakyReLU is in place, so the skip connection carries the activated
    input; that is kept to reproduce the reference network exactly.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm_layer: NormLayer = nn.BatchNorm2d,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        use_bias = _uses_bias(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc

        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)

        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            layers = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            layers = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """The pix2pix U-Net: an input of 2**num_downs pixels is reduced to 1x1 at the bottleneck."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        num_downs: int,
        ngf: int = 64,
        norm_layer: NormLayer = nn.BatchNorm2d,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"UnetGenerator needs num_downs >= 5, got {num_downs}")
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        # The num_downs - 5 intermediate ngf*8 levels: the only ones with dropout (noise, as pix2pix has no z).
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, dropout=dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm_layer=norm_layer
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def unet_depth(image_size: int) -> int:
    """num_downs = log2(image_size); the image must be a power of two of at least 32 pixels."""
    depth = int(round(math.log2(image_size))) if image_size > 0 else 0
    if image_size < MIN_IMAGE_SIZE or 2**depth != image_size:
        raise ValueError(
            f"the U-Net generator needs a square image whose side is a power of two >= {MIN_IMAGE_SIZE}, "
            f"got {image_size}"
        )
    return depth


def build_generator(
    image_size: int,
    in_channels: int,
    ngf: int,
    out_channels: int = 1,
    norm: str = "batch",
    dropout: float = 0.5,
    init_gain: float = 0.02,
) -> UnetGenerator:
    """A freshly initialised U-Net generator whose depth fits ``image_size`` (8 downs at 256)."""
    net = UnetGenerator(in_channels, out_channels, unet_depth(image_size), ngf, get_norm_layer(norm), dropout)
    return init_weights(net, init_gain)


# ----------------------------------------------------------------------------------------------------------------------
# Discriminator


class NLayerDiscriminator(nn.Module):
    """PatchGAN: a grid of real/fake logits, each seeing a 70x70 receptive field when n_layers = 3."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        use_bias = _uses_bias(norm_layer)
        kw, padw = 4, 1
        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=kw, stride=2, padding=padw, bias=use_bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, kernel_size=kw, stride=1, padding=padw, bias=use_bias),
            norm_layer(ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, kernel_size=kw, stride=1, padding=padw),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_discriminator(
    in_channels: int, ndf: int, n_layers: int, norm: str = "batch", init_gain: float = 0.02
) -> NLayerDiscriminator:
    """A freshly initialised PatchGAN on the concatenated (input, output) pair."""
    return init_weights(NLayerDiscriminator(in_channels, ndf, n_layers, get_norm_layer(norm)), init_gain)


# ----------------------------------------------------------------------------------------------------------------------
# Adversarial loss


class GANLoss(nn.Module):
    """The GAN objective against a constant target of the prediction's shape (real = 1, fake = 0)."""

    def __init__(self, gan_mode: str = "vanilla", real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("real_label", torch.tensor(real_label))
        self.register_buffer("fake_label", torch.tensor(fake_label))
        if gan_mode == "vanilla":
            self.loss: nn.Module = nn.BCEWithLogitsLoss()
        elif gan_mode == "lsgan":
            self.loss = nn.MSELoss()
        else:
            raise ValueError(f"unknown gan_mode '{gan_mode}' (expected vanilla or lsgan)")
        self.gan_mode = gan_mode

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = self.real_label if target_is_real else self.fake_label
        # Float32 for the loss itself, also under autocast.
        prediction = prediction.float()
        return self.loss(prediction, target.to(prediction.dtype).expand_as(prediction))


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    """Freeze D while G is updated (saves computing D's parameter gradients)."""
    for p in net.parameters():
        p.requires_grad_(flag)
