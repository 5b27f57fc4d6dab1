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
from dfgan.gan.step import linear_decay
from tests.fakes import fake_cuda_graphs


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


# The learning rate through a scheduler and a checkpoint restore. Under CUDA graphs it is one device tensor that the
# scheduler fills in place and the graph reads; the values must be the schedule's, base x factor(epoch), at every
# step, not a decay compounded on the current rate. Several steps are needed to tell them apart: after one step both
# give base x factor(1).
DECAY = linear_decay(1, 4)  # the GAN's schedule: 1 for one epoch, then 0.8, 0.6, 0.4, 0.2, 0.0
EXPECTED_RATES = [0.5 * DECAY(epoch) for epoch in range(1, 6)]  # 0.4, 0.3, 0.2, 0.1, 0.0


def capturable_adam(parameter: torch.nn.Parameter) -> torch.optim.Adam:
    """``adam(..., capturable=True)``: CUDA's; on a CPU the same options by hand (a tensor rate, capturable)."""
    if parameter.device.type == "cuda":
        return adam([parameter], parameter.device, True, lr=0.5)
    return torch.optim.Adam([parameter], lr=torch.tensor(0.5), capturable=True)


def rates_through_a_restore(
    device: torch.device, scheduler_type: type, before: int = 3, after: int = 2
) -> tuple[list[float], bool, torch.nn.Parameter]:
    """The learning rate after each scheduler step: ``before`` steps, then a restore as a checkpoint resume does it
    (fresh optimizer and scheduler, their state dicts loaded, :func:`restore_capturable_lr`), then ``after`` more.
    Also whether the rate stayed the same tensor (filled in place) within each run, and the parameter. On CUDA each
    step has a constant gradient of 1, so Adam moves the parameter by about the rate it read, on a CPU no gradient
    (a capturable CPU optimizer cannot step)."""
    parameter = torch.nn.Parameter(torch.zeros(3, device=device))
    rates, in_place = [], True
    optimizer = capturable_adam(parameter)
    scheduler = scheduler_type(optimizer, DECAY)
    for steps in (before, after):
        rate = optimizer.param_groups[0]["lr"]
        for _ in range(steps):
            parameter.grad = torch.ones_like(parameter) if device.type == "cuda" else None
            optimizer.step()
            scheduler.step()
            in_place = in_place and optimizer.param_groups[0]["lr"] is rate
            rates.append(learning_rate(optimizer))
        saved = optimizer.state_dict(), scheduler.state_dict()
        optimizer = capturable_adam(parameter)
        scheduler = scheduler_type(optimizer, DECAY)
        optimizer.load_state_dict(saved[0])
        scheduler.load_state_dict(saved[1])
        restore_capturable_lr(optimizer, device)
        assert isinstance(optimizer.param_groups[0]["lr"], torch.Tensor)
    return rates, in_place, parameter


def test_a_tensor_learning_rate_follows_the_schedule_through_a_restore_without_compounding() -> None:
    rates, in_place, _ = rates_through_a_restore(torch.device("cpu"), torch.optim.lr_scheduler.LambdaLR)
    assert in_place and rates == pytest.approx(EXPECTED_RATES, abs=1e-7)
    # The same check fails for a decay that compounds on the current rate (0.4, 0.24, 0.096, ...).
    compounding, _, _ = rates_through_a_restore(torch.device("cpu"), torch.optim.lr_scheduler.MultiplicativeLR)
    assert compounding[0] == pytest.approx(EXPECTED_RATES[0]) and compounding != pytest.approx(EXPECTED_RATES, abs=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_capturable_adam_keeps_a_device_learning_rate_through_the_scheduler_and_a_restore() -> None:
    cuda = torch.device("cuda")
    parameter = torch.nn.Parameter(torch.zeros(3, device=cuda))
    rate = capturable_adam(parameter).param_groups[0]["lr"]
    assert isinstance(rate, torch.Tensor) and rate.device.type == "cuda"
    # Five scheduler steps with a restore after the third: the schedule's rates, each filled into the device tensor.
    rates, in_place, parameter = rates_through_a_restore(cuda, torch.optim.lr_scheduler.LambdaLR)
    assert in_place and rates == pytest.approx(EXPECTED_RATES, abs=1e-7)
    # Adam read those rates: a constant gradient moves the parameter by the rate of each step (0.5 + 0.4 + 0.3 + 0.2
    # + 0.1; a compounding decay would give 0.5 + 0.4 + 0.24 + 0.096 + 0.0192).
    torch.testing.assert_close(parameter.detach().cpu(), torch.full((3,), -1.5), rtol=0, atol=1e-5)
    compounding, _, _ = rates_through_a_restore(cuda, torch.optim.lr_scheduler.MultiplicativeLR)
    assert compounding != pytest.approx(EXPECTED_RATES, abs=1e-7)


# ----------------------------------------------------------------------------------------------------------------------
# CapturedStep's bookkeeping: whether a step really replays its graph (the GPU check fails a silent fallback)


def counting_step() -> tuple[speed.CapturedStep, list[int]]:
    ran: list[int] = []

    def step(x: torch.Tensor) -> torch.Tensor:
        ran.append(len(x))
        return x * 2

    return speed.CapturedStep(step, name="test", warmup=2), ran


def test_a_captured_step_counts_its_replays_and_its_eager_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    graphs = fake_cuda_graphs(monkeypatch)
    captured, ran = counting_step()
    x = torch.ones(4)
    captured(x)
    assert captured.problem() == "never captured (1 of 2 warm-up calls made)"
    for _ in range(5):
        captured(x)
    # 2 eager warm-up calls, the capture (its call replayed once), then 3 replays; the step body ran 3 times.
    assert (captured.calls, captured.replays, captured.eager_calls, len(ran)) == (2, 4, 0, 3)
    assert graphs[0].replayed == 4 and captured.problem() is None
    captured(torch.ones(3))  # a short batch: eager
    assert captured.eager_calls == 1 and captured.replays == 4
    assert captured.problem() == "1 call(s) after the capture ran eagerly (inputs of another shape or dtype)"


def test_a_failed_capture_is_counted_and_named_not_silent(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(speed, "_NOTICES", set())
    fake_cuda_graphs(monkeypatch, capture_error=RuntimeError("operation not permitted when stream is capturing\nmore"))
    captured, ran = counting_step()
    outputs = [captured(torch.ones(4)) for _ in range(5)]
    assert all(torch.equal(out, torch.full((4,), 2.0)) for out in outputs)  # the eager step's results
    assert captured.failed and captured.replays == 0 and captured.eager_calls == 3 and not captured.captured
    assert captured.failure == "RuntimeError: operation not permitted when stream is capturing"
    assert captured.problem() == ("the capture failed and 3 call(s) ran eagerly "
                                  "(RuntimeError: operation not permitted when stream is capturing)")
    assert "[test] CUDA graph capture failed (RuntimeError: operation not permitted" in capsys.readouterr().out
