"""The eager FID Inception against the TorchScript file it is built from: features, gradients, the float16 copy,
a wrong file, and the FID (CPU, a few small images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dfgan.gan import inception
from dfgan.gan.fid import compute_features, feature_statistics, frechet_distance
from dfgan.gan.inception_net import FIDInceptionV3, load_torchscript_tensors
from tests.fakes import blob_xrays


def to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, S, S) -> (N, 1, S, S) in [-1, 1]."""
    return torch.from_numpy(images).float().div(127.5).sub(1.0).unsqueeze(1)


class ScriptedFeatures(nn.Module):
    """The original TorchScript network on the same input as the eager one: the reference."""

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.scripted = scripted

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.jit.optimized_execution(False):
            return self.scripted(inception.pixels_to_tf_input(images)).reshape(-1, inception.FEATURE_DIM).float()


@pytest.fixture(scope="module")
def eager() -> inception.InceptionFeatures:
    return inception.load_inception("cpu")


@pytest.fixture(scope="module")
def scripted() -> ScriptedFeatures:
    return ScriptedFeatures(inception._load_scripted("cpu", None))


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("size", [64, 256])
def test_eager_features_equal_the_torchscript_ones(size: int, eager, scripted) -> None:
    assert isinstance(eager.net, FIDInceptionV3)
    images = to_unit(blob_xrays(4, size, seed=size)[0])
    with torch.no_grad():
        features, reference = eager(images), scripted(images)
    assert features.shape == (4, 2048) and features.dtype == torch.float32
    difference = relative_difference(features, reference)
    print(f"{size} px: max |eager - TorchScript| / max |TorchScript| = {difference:.3e}")
    assert difference <= 1e-5
    torch.testing.assert_close(features, reference, rtol=1e-5, atol=1e-6)


def test_gradients_reach_the_input_and_the_network_stays_frozen(eager, scripted) -> None:
    eager.train()
    assert not eager.training and not any(m.training for m in eager.modules())
    assert all(not p.requires_grad for p in eager.parameters())
    images = to_unit(blob_xrays(2, 32, seed=3)[0])
    grads = []
    for extractor in (eager, scripted):
        x = images.clone().requires_grad_(True)
        extractor(x).square().sum().backward()
        grads.append(x.grad)
    assert torch.isfinite(grads[0]).all() and grads[0].abs().max() > 0
    assert relative_difference(grads[0], grads[1]) <= 1e-4
    assert all(p.grad is None for p in eager.parameters())
    with torch.inference_mode():  # no TorchScript left to object to inference tensors
        assert eager(images).shape == (2, 2048)


def test_the_float16_copy_loads_into_the_eager_network(tmp_path: Path, eager) -> None:
    half_file = inception.save_half_precision_copy(tmp_path / "fid16.pt")
    assert {p.dtype for p in torch.jit.load(str(half_file)).parameters()} == {torch.float16}
    half = inception.load_inception("cpu", half_file)
    assert isinstance(half.net, FIDInceptionV3) and half is not eager
    assert {t.dtype for t in half.state_dict().values() if t.is_floating_point()} == {torch.float32}
    images = to_unit(blob_xrays(3, 64, seed=5)[0])
    with torch.no_grad():
        features, reference = half(images), eager(images)
    assert not torch.equal(features, reference)  # the rounded copy, not the original
    torch.testing.assert_close(features, reference, atol=2e-2, rtol=2e-2)


def test_a_file_that_is_not_the_inception_is_refused_by_name(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny_net.pt"
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())), str(tiny))
    with pytest.raises(ValueError, match="tiny_net.pt.*'0.weight'"):
        inception.load_inception("cpu", tiny)
    not_torchscript = tmp_path / "notes.pt"
    not_torchscript.write_text("not a network")
    with pytest.raises(ValueError, match="notes.pt"):
        inception.load_inception("cpu", not_torchscript)


def test_a_file_missing_a_tensor_is_refused_naming_it(eager) -> None:
    tensors = dict(inception._load_scripted("cpu", None).state_dict())
    del tensors["net.layers.mixed_10.tower_2_conv.var"]
    with pytest.raises(ValueError, match=r"cut\.pt.*Mixed_7c\.branch_pool\.bn\.running_var"):
        load_torchscript_tensors(FIDInceptionV3(), tensors, "cut.pt")
    tensors["net.layers.mixed_10.tower_2_conv.var"] = torch.ones(3)
    with pytest.raises(ValueError, match=r"cut\.pt.*shape \(3,\)"):
        load_torchscript_tensors(FIDInceptionV3(), tensors, "cut.pt")


@pytest.mark.slow  # over 5 s: outside the fast tier
def test_the_fid_with_the_eager_network_equals_the_torchscript_one(eager, scripted) -> None:
    real_images, _ = blob_xrays(10, 64, seed=11)
    other_images, _ = blob_xrays(10, 64, seed=12, lesion_contrast=60.0)
    fids = []
    for extractor in (eager, scripted):
        real = compute_features(real_images, extractor, batch_size=5, device="cpu")
        other = compute_features(other_images, extractor, batch_size=5, device="cpu")
        mu, sigma = feature_statistics(real)
        fids.append(frechet_distance(mu, sigma, other))
    print(f"FID 10 vs 10 images: eager {fids[0]:.6f}, TorchScript {fids[1]:.6f}")
    assert np.isfinite(fids).all() and fids[1] > 0
    assert abs(fids[0] - fids[1]) <= 1e-4 * abs(fids[1])


def test_loading_the_inception_leaves_the_global_random_stream_alone(tmp_path: Path) -> None:
    """The eager layers are built (randomly initialised, then overwritten) inside a forked generator: a training run
    that loads the Inception after seeding draws the same dropout masks as before the eager network existed."""
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    inception._extractor_on.cache_clear()  # a fresh load, not the cached instance
    inception.load_inception("cpu")
    torch.testing.assert_close(torch.rand(4), expected, rtol=0, atol=0)
