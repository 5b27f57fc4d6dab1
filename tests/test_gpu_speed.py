"""GPU-speed pieces that a CPU can check: the sync-free FID of CUDA-graph steps, the batched crop of the paired
jitter, jitter drawn on the generator's device, and the option notices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dfgan.core import speed
from dfgan.core.speed import adam, cuda_graphs_wanted, learning_rate, restore_capturable_lr
from dfgan.gan.fid import FIDLoss, feature_statistics, sync_free_fid, trace_sqrt_psd
from dfgan.gan.pairs import crop_batch, epoch_batches, epoch_generator, paired_jitter


@pytest.mark.parametrize("d, n_real", [(16, 20), (256, 300)])
def test_the_sync_free_fid_matches_the_eigensolver_in_value_and_gradient(d: int, n_real: int) -> None:
    rng = np.random.default_rng(d)
    loss = FIDLoss(*feature_statistics(np.abs(rng.normal(size=(n_real, d)))))
    for scale in (0.5, 1.0, 3.0):
        features = torch.tensor(np.abs(rng.normal(size=(16, d))) * scale, dtype=torch.float32, requires_grad=True)
        exact = loss(features)
        (exact_grad,) = torch.autograd.grad(exact, features)
        free = sync_free_fid(loss, features)
        (free_grad,) = torch.autograd.grad(free, features)
        torch.testing.assert_close(free, exact, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(free_grad, exact_grad, rtol=1e-5, atol=1e-6 * float(exact_grad.abs().max()))


def test_trace_sqrt_handles_a_null_direction_and_a_wide_spectrum() -> None:
    generator = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64, generator=generator))[0]
    eigenvalues = torch.cat([torch.zeros(1, dtype=torch.float64), torch.logspace(-10, 3, 15, dtype=torch.float64)])
    matrix = basis @ torch.diag(eigenvalues) @ basis.T
    expected = eigenvalues.sqrt().sum()
    assert abs(float(trace_sqrt_psd(matrix) - expected)) / float(expected) < 1e-6
    assert float(trace_sqrt_psd(torch.zeros(4, 4, dtype=torch.float64))) < 1e-6  # a batch of identical images
    # Round-off just below 0 (the shift covers a Gram matrix's): finite, and the same sum.
    rounded = matrix - 1e-14 * float(eigenvalues.max()) * torch.outer(basis[:, 0], basis[:, 0])
    assert abs(float(trace_sqrt_psd(rounded) - expected)) / float(expected) < 1e-6


def test_the_sync_free_fid_stays_finite_for_a_rank_deficient_real_covariance() -> None:
    """Fewer real images than features: C_r is singular and has round-off eigenvalues below 0; the Gram form keeps
    the matrix under the square root positive semi-definite."""
    rng = np.random.default_rng(1)
    mu, sigma = feature_statistics(rng.normal(size=(10, 64)) * 1e3)
    loss = FIDLoss(mu, sigma)
    for shrink in (1.0, 1e-4, 1e-8):
        features = torch.tensor(rng.normal(size=(16, 64)) * shrink, dtype=torch.float32, requires_grad=True)
        free, exact = sync_free_fid(loss, features), loss(features)
        (grad,) = torch.autograd.grad(free, features)
        assert torch.isfinite(free) and torch.isfinite(grad).all()
        torch.testing.assert_close(free, exact, rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="batch"):
        sync_free_fid(FIDLoss(np.zeros(4), np.eye(4)), torch.zeros(5, 4))


def test_crop_batch_is_slicing() -> None:
    batch = torch.rand(5, 2, 20, 20)
    corners = torch.tensor([[0, 0], [3, 1], [4, 4], [0, 4], [2, 3]])
    expected = torch.stack([batch[i, :, y : y + 16, x : x + 16] for i, (y, x) in enumerate(corners.tolist())])
    cropped = crop_batch(batch, corners, 16)
    assert torch.equal(cropped, expected) and cropped.is_contiguous()


def test_jitter_and_order_draw_on_the_generators_device() -> None:
    generator = epoch_generator(3, 1, "cpu")
    assert generator.device.type == "cpu"
    again = epoch_generator(3, 1)
    assert torch.equal(torch.cat(list(epoch_batches(10, 4, generator))), torch.cat(list(epoch_batches(10, 4, again))))
    targets = torch.rand(4, 1, 16, 16) * 2 - 1
    masks = (targets > 0).float()
    a = paired_jitter(targets, masks, 1.25, True, torch.Generator().manual_seed(0))
    # The CPU stream is the one the jitter always drew: randint for the corners, then rand for the flips.
    reference = torch.Generator().manual_seed(0)
    offsets = torch.randint(0, 1 << 30, (4, 2), generator=reference)
    flips = torch.rand(4, generator=reference) < 0.5
    big = torch.nn.functional.interpolate(targets, size=(20, 20), mode="bicubic", align_corners=False).clamp(-1, 1)
    corners = (offsets % 5).tolist()
    expected = torch.stack([big[i, :, y : y + 16, x : x + 16] for i, (y, x) in enumerate(corners)])
    expected = torch.where(flips.view(4, 1, 1, 1), expected.flip(-1), expected)
    assert torch.equal(a[0], expected)


def test_an_ignored_option_prints_one_line_per_process(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(speed, "_NOTICES", set())
    cpu = torch.device("cpu")
    assert not cuda_graphs_wanted(False, cpu, "x.cuda_graphs")
    assert capsys.readouterr().out == ""
    for _ in range(3):
        assert not cuda_graphs_wanted(True, cpu, "x.cuda_graphs", {"never shown on a CPU": True})
    assert capsys.readouterr().out == "x.cuda_graphs: ignored, CUDA graphs need a CUDA device (running on cpu)\n"


def test_capturable_adam_is_cuda_only_and_the_cpu_optimizer_is_unchanged() -> None:
    parameter = torch.nn.Parameter(torch.zeros(3))
    optimizer = adam([parameter], torch.device("cpu"), True, lr=0.5)
    assert optimizer.param_groups[0]["lr"] == 0.5 and not optimizer.param_groups[0]["capturable"]
    assert learning_rate(optimizer) == 0.5
    restore_capturable_lr(optimizer, torch.device("cpu"))  # nothing to do for a non-capturable group
    assert optimizer.param_groups[0]["lr"] == 0.5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_capturable_adam_keeps_a_device_learning_rate_through_the_scheduler_and_a_restore() -> None:
    cuda = torch.device("cuda")
    parameter = torch.nn.Parameter(torch.zeros(3, device=cuda))
    optimizer = adam([parameter], cuda, True, lr=0.5)
    rate = optimizer.param_groups[0]["lr"]
    assert isinstance(rate, torch.Tensor) and rate.device.type == "cuda" and optimizer.param_groups[0]["capturable"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.5 ** epoch)
    parameter.grad = torch.ones_like(parameter)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] is rate and learning_rate(optimizer) == 0.25  # filled in place
    state = {k: v for k, v in optimizer.state_dict().items()}
    optimizer.load_state_dict(state)
    restore_capturable_lr(optimizer, cuda)
    assert optimizer.param_groups[0]["lr"].device.type == "cuda" and learning_rate(optimizer) == 0.25
