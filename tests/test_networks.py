"""The pix2pix networks: reference parameter counts, U-Net depth and dropout placement, init, GAN loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dfgan.gan.networks import (
    GANLoss,
    NLayerDiscriminator,
    build_discriminator,
    build_generator,
    count_parameters,
    get_norm_layer,
    init_weights,
    unet_depth,
)


def test_unet_256_has_the_reference_parameter_count() -> None:
    generator = build_generator(256, in_channels=1, ngf=64, out_channels=1, norm="batch", dropout=0.5)
    assert count_parameters(generator) == 54_407_809


def test_patchgan_on_two_channels_has_the_reference_parameter_count() -> None:
    discriminator = build_discriminator(2, ndf=64, n_layers=3, norm="batch")
    assert count_parameters(discriminator) == 2_764_609


def test_patchgan_gives_30x30_logits_at_256() -> None:
    discriminator = NLayerDiscriminator(2, ndf=8, n_layers=3)
    assert discriminator(torch.zeros(1, 2, 256, 256)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize(("size", "downs", "dropouts"), [(32, 5, 0), (64, 6, 1), (128, 7, 2), (256, 8, 3)])
def test_depth_is_log2_size_and_dropout_sits_in_the_intermediate_blocks(size: int, downs: int, dropouts: int) -> None:
    assert unet_depth(size) == downs
    generator = build_generator(size, in_channels=1, ngf=4, dropout=0.5)
    layers = [m for m in generator.modules() if isinstance(m, nn.Dropout)]
    assert len(layers) == dropouts
    assert all(layer.p == 0.5 for layer in layers)


@pytest.mark.parametrize("size", [16, 48, 100, 0])
def test_generator_refuses_sizes_that_are_not_powers_of_two_of_at_least_32(size: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        build_generator(size, in_channels=1, ngf=4)


def test_generator_maps_to_the_input_size_in_tanh_range() -> None:
    generator = build_generator(32, in_channels=2, ngf=8)
    out = generator(torch.randn(3, 2, 32, 32))
    assert out.shape == (3, 1, 32, 32)
    assert out.abs().max() <= 1.0


def test_no_dropout_when_disabled() -> None:
    generator = build_generator(256, in_channels=1, ngf=2, dropout=0.0)
    assert not any(isinstance(m, nn.Dropout) for m in generator.modules())


def test_init_weights_is_the_official_normal_init() -> None:
    torch.manual_seed(0)
    net = init_weights(nn.Sequential(nn.Conv2d(8, 64, 3), nn.BatchNorm2d(64), nn.ConvTranspose2d(64, 8, 3)), 0.02)
    conv, norm, deconv = net
    assert abs(conv.weight.std().item() - 0.02) < 0.002
    assert abs(deconv.weight.std().item() - 0.02) < 0.002
    assert torch.all(conv.bias == 0) and torch.all(deconv.bias == 0) and torch.all(norm.bias == 0)
    assert abs(norm.weight.mean().item() - 1.0) < 0.01
    assert 0.005 < norm.weight.std().item() < 0.04


def test_convs_before_batch_norm_have_no_bias_but_instance_norm_ones_do() -> None:
    batch = build_discriminator(2, ndf=4, n_layers=3, norm="batch")
    instance = build_discriminator(2, ndf=4, n_layers=3, norm="instance")
    assert batch.model[2].bias is None
    assert instance.model[2].bias is not None
    with pytest.raises(ValueError):
        get_norm_layer("group")


def test_gan_loss_vanilla_is_bce_with_logits_and_lsgan_is_mse() -> None:
    logits = torch.randn(2, 1, 5, 5)
    bce = nn.functional.binary_cross_entropy_with_logits
    assert torch.allclose(GANLoss("vanilla")(logits, True), bce(logits, torch.ones_like(logits)))
    assert torch.allclose(GANLoss("vanilla")(logits, False), bce(logits, torch.zeros_like(logits)))
    assert torch.allclose(GANLoss("lsgan")(logits, True), ((logits - 1) ** 2).mean())
    with pytest.raises(ValueError):
        GANLoss("wgan")
