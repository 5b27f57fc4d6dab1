"""The shared device settings: determinism, compile plumbing, CPU-neutral speed-ups, the half-precision Inception."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dfgan.core.params_file import load_params, load_settings
from dfgan.core.settings import SCHEMA, settings_from
from dfgan.core.speed import (
    CUBLAS_WORKSPACE_VARIABLE, adam, channels_last_input, compile_in_place, configure_determinism,
    prefer_channels_last,
)
from dfgan.core.validation import validate_params
from dfgan.gan import inception
from dfgan.gan.config import GanConfig
from dfgan.gan.fid import feature_statistics, frechet_distance
from dfgan.gan.pairs import make_inputs
from dfgan.gan.step import autocast_context, build_models, train_step
from tests.fakes import blob_xrays

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


@pytest.fixture()
def restore_determinism(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test leaves the process-wide flags (and the cuBLAS variable) as it found them."""
    monkeypatch.delenv(CUBLAS_WORKSPACE_VARIABLE, raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(before[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]


def test_deterministic_true_turns_every_switch_on(restore_determinism: None) -> None:
    configure_determinism(True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ[CUBLAS_WORKSPACE_VARIABLE] == ":4096:8"


def test_deterministic_false_turns_them_off(restore_determinism: None) -> None:
    configure_determinism(True)
    configure_determinism(False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark


def test_every_profile_states_determinism_and_a_missing_key_is_named() -> None:
    for name in ("params.yaml", "params_paper.yaml", "params_evidence.yaml"):
        assert isinstance(load_settings(REPO / name).runtime.deterministic, bool)
    assert load_settings(REPO / "params.yaml").runtime.deterministic is True
    params = load_params(REPO / "params.yaml")
    del params["runtime"]["deterministic"]
    assert any("runtime.deterministic: missing" in line for line in validate_params(params))


def tiny_gan_settings(**gan: object) -> GanConfig:
    params = copy.deepcopy(load_params(REPO / "params.yaml"))
    params["data"]["image_size"] = 32
    params["gan"].update(ngf=4, ndf=4, batch_size=2, device="cpu", **gan)
    return GanConfig.of(settings_from(params), "pix2pix", 0)


def one_step_weights(s: GanConfig) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    models = build_models(s, CPU)
    y = torch.rand(2, 1, 32, 32) * 2 - 1
    x = make_inputs(y, (y > 0.5).float(), s.mask_channel)
    train_step(models, x, y, s, None, autocast_context(s, CPU))
    return models.generator.state_dict()


def test_a_cpu_step_is_bit_identical_with_and_without_determinism(restore_determinism: None) -> None:
    s = tiny_gan_settings()
    configure_determinism(False)
    free = one_step_weights(s)
    configure_determinism(True)
    strict = one_step_weights(s)
    assert all(torch.equal(free[k], strict[k]) for k in free)


def test_cpu_keeps_its_layout_and_its_optimizer() -> None:
    net = nn.Conv2d(1, 2, 3)
    assert prefer_channels_last(net, CPU).weight.is_contiguous()  # NCHW as before
    batch = torch.rand(2, 1, 8, 8)
    assert channels_last_input(batch) is batch
    optimizer = adam(net.parameters(), CPU, lr=1e-3)
    assert not optimizer.defaults.get("fused")


def test_compile_modes_are_checked_and_off_leaves_the_module_alone() -> None:
    assert SCHEMA["gan.compile"].typed(False) == "off"  # a bare YAML `off`
    assert tiny_gan_settings(compile=False).compile == "off"
    params = load_params(REPO / "params.yaml")
    params["gan"]["compile"] = "fast"
    assert any("gan.compile: must be one of off, default, max-autotune" in line for line in validate_params(params))
    net = nn.Linear(2, 2)
    assert compile_in_place(net, "off") is net and net._compiled_call_impl is None


@pytest.mark.slow  # tens of seconds: TorchInductor compiles the tiny G and D with the C++ compiler
def test_compiled_gan_builds_and_trains_a_step_on_cpu_with_the_same_state_dict_keys() -> None:
    plain = one_step_weights(tiny_gan_settings())
    compiled = one_step_weights(tiny_gan_settings(compile="default"))
    assert compiled.keys() == plain.keys()  # compiled in place: checkpoints and saved generators keep their keys
    assert all(torch.isfinite(v).all() for v in compiled.values() if v.is_floating_point())


def test_the_deterministic_resize_is_the_bilinear_interpolation() -> None:
    images = (torch.rand(2, 1, 64, 48) * 2 - 1).requires_grad_()
    by_matmul = inception.bilinear_resize_by_matmul(images, 299)
    reference = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(by_matmul, reference, atol=1e-5, rtol=1e-5)
    (grad_matmul,) = torch.autograd.grad(by_matmul.square().sum(), images)
    (grad_reference,) = torch.autograd.grad(reference.square().sum(), images)
    torch.testing.assert_close(grad_matmul, grad_reference, atol=1e-3, rtol=1e-4)


def tiny_torchscript_inception(path: Path) -> Path:
    """A stand-in with the real file's contract: TorchScript, 3 x 299 x 299 in, 2048 features out."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=8), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 2048))
    torch.jit.save(torch.jit.script(net.eval()), str(path))
    return path


def test_half_precision_copy_is_smaller_and_stored_as_float16(tmp_path: Path) -> None:
    original = tiny_torchscript_inception(tmp_path / "tiny.pt")
    half = inception.save_half_precision_copy(tmp_path / "copy" / "tiny16.pt", original)
    stored = torch.jit.load(str(half))
    assert {p.dtype for p in stored.parameters()} == {torch.float16}
    assert half.stat().st_size < original.stat().st_size

    # A TorchScript file that is not the FID Inception is refused by name (a real float16 copy loading into the eager
    # network: tests/test_inception_eager.py).
    with pytest.raises(ValueError, match="tiny16.pt"):
        inception.load_inception("cpu", half)


def test_a_missing_inception_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        inception.load_inception("cpu", tmp_path / "nope.pt")


@pytest.mark.slow  # ~40 Inception forward passes at 299 x 299 on a CPU
def test_half_precision_inception_moves_the_fid_by_under_one_percent(tmp_path: Path) -> None:
    original = inception.load_inception("cpu")
    half = inception.load_inception("cpu", inception.save_half_precision_copy(tmp_path / "fid16.pt"))
    real_images, _ = blob_xrays(20, 64, seed=1)
    other_images, _ = blob_xrays(20, 64, seed=2, lesion_contrast=60.0)
    to_unit = lambda a: torch.from_numpy(a).float().div(127.5).sub(1.0).unsqueeze(1)  # noqa: E731
    fids = []
    for extractor in (original, half):
        with torch.no_grad():
            real = extractor(to_unit(real_images)).double().numpy()
            other = extractor(to_unit(other_images)).double()
        mu, sigma = feature_statistics(real)
        fids.append(frechet_distance(mu, sigma, other, 1e-12))
    relative = abs(fids[1] - fids[0]) / fids[0]
    print(f"batch FID, 20 vs 20 images: float32 weights {fids[0]:.6f}, float16 copy {fids[1]:.6f}, "
          f"relative difference {relative:.2e}")
    assert np.isfinite(fids).all() and relative < 0.01
