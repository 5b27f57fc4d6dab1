"""Paired GAN training: pairs and jitter, the step, the FID term, checkpoints, exact resume, outputs."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from dfgan.core.params_file import load_params
from dfgan.core.paths import GanRunPaths
from dfgan.core.settings import settings_from
from dfgan.gan.config import DERIVED, GanConfig, GanRunOptions
from dfgan.gan.fid import FIDLoss, feature_statistics, write_reference_stats
from dfgan.gan.inception import load_inception
from dfgan.gan.generator import load_generator
from dfgan.gan.pairs import epoch_batches, epoch_generator, make_inputs, paired_jitter
from dfgan.gan.step import FidTerm, autocast_context, autocast_dtype, build_models, linear_decay, train_step
from dfgan.gan.training import train_gan
from tests.fakes import TinyExtractor, blob_xrays, save_fake_prepared

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------------------------------------------------
# Fixtures: a tiny prepared dataset, a tiny frozen extractor, small settings


def make_prepared(directory: Path, image_size: int, n_train: int = 8, n_test: int = 3, seed: int = 0) -> Path:
    """Blob 'X-rays' with dark lesions; nested training subsets of 4 and n_train."""
    images, masks = blob_xrays(n_train + n_test, image_size, seed)
    return save_fake_prepared(directory, images, masks, n_train, [4, n_train], seed)


def small_params(image_size: int, **gan: Any) -> dict[str, Any]:
    params = copy.deepcopy(load_params(REPO / "params.yaml"))
    params["data"]["image_size"] = image_size
    params["gan"].update(
        ngf=8, ndf=8, batch_size=4, n_epochs=2, n_epochs_decay=1, checkpoint_every=2, fid_eval_every=2,
        sample_count=3, device="cpu", amp=False, keep_checkpoint=True,
    )
    params["gan"].update(gan)
    return params


def config(params: dict[str, Any], variant: str, seed: int = 0) -> GanConfig:
    return GanConfig.of(settings_from(params), variant, seed)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Prepared data at 64 px (one dropout block, so the RNG matters) with tiny-extractor statistics."""
    root = tmp_path_factory.mktemp("gan")
    prepared = make_prepared(root / "prepared", 64)
    extractor = TinyExtractor()
    write_reference_stats(prepared, [4, 8], root / "stats", batch_size=4, device=CPU, extractor=extractor)
    return {"root": root, "prepared": prepared, "stats": root / "stats", "extractor": extractor}


def run(tiny: dict[str, Any], name: str, params: dict[str, Any], variant: str = "dfgan", **kwargs: Any) -> dict:
    root, settings = tiny["root"] / name, settings_from(params)
    return train_gan(
        tiny["prepared"], 8, GanConfig.of(settings, variant, 0), GanRunOptions.of(settings),
        GanRunPaths(root / "model", root / "ckpt.pt", root / "live", root / "metrics.json"),
        stats_path=tiny["stats"] / "train_8.npz", extractor=tiny["extractor"],
        **kwargs,
    )


def load_ckpt(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ----------------------------------------------------------------------------------------------------------------------
# Pieces


def test_linear_decay_is_the_official_rule() -> None:
    factor = linear_decay(n_epochs=3, n_epochs_decay=3)
    assert [factor(e) for e in range(6)] == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25])


def test_inputs_are_the_disease_area_and_optional_mask_channel() -> None:
    targets = torch.rand(2, 1, 8, 8) * 2 - 1
    masks = (torch.rand(2, 1, 8, 8) > 0.7).float()
    x = make_inputs(targets, masks, mask_channel=False)
    assert torch.equal(x, torch.where(masks > 0, targets, torch.full_like(targets, -1.0)))
    x2 = make_inputs(targets, masks, mask_channel=True)
    assert x2.shape == (2, 2, 8, 8) and torch.equal(x2[:, 1:], masks * 2 - 1)


def test_paired_jitter_moves_image_and_mask_together() -> None:
    targets = torch.linspace(-1, 1, 32 * 32).view(1, 1, 32, 32).repeat(6, 1, 1, 1)
    masks = (targets > 0.3).float()  # the mask is a function of the pixel values ...
    jittered, jittered_masks = paired_jitter(targets, masks, 1.25, True, torch.Generator().manual_seed(0))
    assert jittered.shape == targets.shape and jittered_masks.shape == masks.shape
    # ... so after the same crop/flip it still marks the bright pixels (up to interpolation at the edge).
    assert ((jittered > 0.35) <= (jittered_masks > 0)).all() and ((jittered < 0.25) <= (jittered_masks == 0)).all()
    again = paired_jitter(targets, masks, 1.25, True, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], jittered) and torch.equal(again[1], jittered_masks)
    flipped = paired_jitter(targets, masks, 1.0, True, torch.Generator().manual_seed(0))[0]
    assert all(torch.equal(f, t) or torch.equal(f, t.flip(-1)) for f, t in zip(flipped, targets))


def test_epoch_order_depends_only_on_seed_and_epoch() -> None:
    first = list(epoch_batches(10, 4, epoch_generator(0, 3)))
    assert [b.tolist() for b in first] == [b.tolist() for b in epoch_batches(10, 4, epoch_generator(0, 3))]
    # The short last batch is refilled from the start of the epoch's order: full batches, every image once or more.
    assert [len(b) for b in first] == [4, 4, 4]
    assert sorted(set(torch.cat(first).tolist())) == list(range(10))
    assert first[2][2:].tolist() == first[0][:2].tolist() and len(set(first[2].tolist())) == 4
    with pytest.raises(ValueError, match="gan.batch_size"):
        list(epoch_batches(3, 4, epoch_generator(0, 0)))
    assert torch.cat(first).tolist() != torch.cat(list(epoch_batches(10, 4, epoch_generator(0, 4)))).tolist()


def test_amp_only_on_cuda(tiny: dict[str, Any]) -> None:
    s = config(small_params(64, amp=True), "dfgan")
    assert autocast_dtype(s, CPU) is None
    assert autocast_dtype(s, torch.device("cuda")) == torch.bfloat16


def test_pix2pix_variant_has_no_fid_weight(tiny: dict[str, Any]) -> None:
    s = config(small_params(64, lambda_fid=5.0), "pix2pix")
    assert s.lambda_fid == 0 and not s.uses_fid_loss
    with pytest.raises(ValueError):
        config(small_params(64), "cyclegan")


def _step_setup(image_size: int, variant: str, extractor: nn.Module, **gan: Any):
    s = config(small_params(image_size, **gan), variant)
    torch.manual_seed(0)
    models = build_models(s, CPU)
    rng = np.random.default_rng(0)
    real = rng.normal(size=(20, 16 if isinstance(extractor, TinyExtractor) else 2048))
    mu, sigma = feature_statistics(real)
    fid_term = FidTerm(extractor, FIDLoss(mu, sigma))
    grid = torch.linspace(-1, 1, image_size)
    y = torch.stack([torch.outer(torch.sin(3 * grid + k), torch.cos(2 * grid)) for k in range(4)]).unsqueeze(1)
    masks = torch.zeros_like(y)
    masks[:, :, 8:20, 8:20] = 1
    return s, models, fid_term, make_inputs(y, masks, s.mask_channel), y


def test_a_few_steps_lower_the_l1_term(tiny: dict[str, Any]) -> None:
    s, models, fid_term, x, y = _step_setup(32, "pix2pix", tiny["extractor"], lr=0.002)
    l1 = [train_step(models, x, y, s, fid_term, autocast_context(s, CPU))["loss_G_L1"] for _ in range(8)]
    assert l1[-1] < 0.8 * l1[0]


def test_pix2pix_steps_never_run_the_extractor(tiny: dict[str, Any]) -> None:
    extractor = TinyExtractor()
    s, models, fid_term, x, y = _step_setup(32, "pix2pix", extractor)
    losses = train_step(models, x, y, s, fid_term, autocast_context(s, CPU))
    assert extractor.calls == 0 and "loss_FID" not in losses
    losses = train_step(models, x, y, s, fid_term, autocast_context(s, CPU), monitor_fid=True)
    assert extractor.calls == 1 and np.isfinite(losses["loss_FID"])


def test_batch_of_one_skips_the_fid_term(tiny: dict[str, Any]) -> None:
    s, models, fid_term, x, y = _step_setup(32, "dfgan", tiny["extractor"])
    losses = train_step(models, x[:1], y[:1], s, fid_term, autocast_context(s, CPU))
    assert "loss_FID" not in losses and np.isfinite(losses["loss_G"])


def test_detached_fid_is_a_constant_and_differentiable_fid_moves_g(tiny: dict[str, Any]) -> None:
    weights = {}
    for name, variant, mode in [("base", "pix2pix", "differentiable"), ("detached", "dfgan", "detached"),
                                ("differentiable", "dfgan", "differentiable")]:
        s, models, fid_term, x, y = _step_setup(32, variant, tiny["extractor"], fid_mode=mode,
                                                lambda_fid=10.0)
        losses = train_step(models, x, y, s, fid_term, autocast_context(s, CPU))
        weights[name] = models.generator.state_dict()
        if variant == "dfgan":
            assert np.isfinite(losses["loss_FID"])
    assert_same_weights(weights["base"], weights["detached"])  # a constant adds no gradient
    assert any(not torch.equal(weights["base"][k], weights["differentiable"][k]) for k in weights["base"])


def test_real_inception_stays_frozen_and_out_of_the_optimizers(tiny: dict[str, Any]) -> None:
    extractor = load_inception(CPU)
    before = {k: v.clone() for k, v in extractor.state_dict().items()}
    s, models, fid_term, x, y = _step_setup(32, "dfgan", extractor)
    x, y = x[:2], y[:2]
    for _ in range(2):
        losses = train_step(models, x, y, s, fid_term, autocast_context(s, CPU))
    assert np.isfinite(losses["loss_FID"])
    assert all(torch.isfinite(p).all() for p in models.generator.parameters())
    assert_same_weights(before, extractor.state_dict())
    extractor_params = {id(p) for p in extractor.parameters()}
    for optimizer in (models.opt_G, models.opt_D):
        assert not extractor_params & {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not extractor.training and all(not p.requires_grad for p in extractor.parameters())


# ----------------------------------------------------------------------------------------------------------------------
# Whole runs: outputs, checkpoints, resume


def test_training_run_writes_its_outputs(tiny: dict[str, Any]) -> None:
    params = small_params(64, jitter_load_scale=1.125, mask_channel=True)
    metrics = run(tiny, "outputs", params)
    root = tiny["root"] / "outputs"
    for name in ("generator.pt", "generator.json", "samples.png"):
        assert (root / "model" / name).is_file()
    assert json.loads((root / "metrics.json").read_text()) == metrics
    assert metrics["epochs"] == 3 and metrics["steps"] == 6 and metrics["device"] == "cpu"
    for key in ("loss_D", "loss_G_GAN", "loss_G_L1", "loss_FID", "fid_train", "seconds", "steps_per_second"):
        assert np.isfinite(metrics[key]), key
    # dvclive: one row per epoch; fid_train at the evaluation epochs (every 2nd and the last).
    lr_rows = (root / "live" / "plots" / "metrics" / "lr.tsv").read_text().splitlines()
    assert len(lr_rows) == 1 + 3
    fid_rows = (root / "live" / "plots" / "metrics" / "fid_train.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in fid_rows[1:]] == ["2", "3"]
    assert not (root / "live" / "dvc.yaml").exists()
    # The generator reloads from weights alone and reproduces the trained one.
    generator, spec = load_generator(root / "model")
    assert spec["in_channels"] == 2 and spec["image_size"] == 64
    state = torch.load(root / "model" / "generator.pt", weights_only=True)
    assert_same_weights(generator.state_dict(), state)
    assert_same_weights(load_ckpt(root / "ckpt.pt")["generator"], state)


def test_resume_after_a_kill_ends_with_the_same_weights(tiny: dict[str, Any]) -> None:
    params = small_params(64, jitter_load_scale=1.125)
    full = run(tiny, "full", params)
    stopped = run(tiny, "resumed", params, stop_after_epoch=1)
    assert stopped == {"stopped_after_epoch": 1}
    assert load_ckpt(tiny["root"] / "resumed" / "ckpt.pt")["epoch"] == 1
    resumed = run(tiny, "resumed", params)
    assert resumed["resumed_after_epoch"] == 1 and full["resumed_after_epoch"] == 0
    a, b = load_ckpt(tiny["root"] / "full" / "ckpt.pt"), load_ckpt(tiny["root"] / "resumed" / "ckpt.pt")
    assert_same_weights(a["generator"], b["generator"])
    assert_same_weights(a["discriminator"], b["discriminator"])
    assert a["history"] == b["history"]
    for key in ("loss_D", "loss_G_L1", "loss_FID", "fid_train"):
        assert full[key] == resumed[key]
    # The dvclive history is complete after the resume, epoch by epoch.
    for tsv in ("loss_D.tsv", "fid_train.tsv", "lr.tsv"):
        path = Path("live") / "plots" / "metrics" / tsv
        assert (tiny["root"] / "full" / path).read_text() == (tiny["root"] / "resumed" / path).read_text()


def test_checkpoint_is_weights_only_and_a_changed_config_starts_fresh(tiny: dict[str, Any]) -> None:
    params = small_params(64)
    run(tiny, "fresh", params, variant="pix2pix", stop_after_epoch=1)
    state = load_ckpt(tiny["root"] / "fresh" / "ckpt.pt")  # weights_only=True
    expected = {"generator", "discriminator", "opt_G", "opt_D", "sched_G", "sched_D", "rng_cpu", "fingerprint"}
    assert expected <= set(state)
    changed = copy.deepcopy(params)
    changed["gan"]["lambda_l1"] = 50
    metrics = run(tiny, "fresh", changed, variant="pix2pix")
    assert metrics["resumed_after_epoch"] == 0 and metrics["steps"] == 6
    assert load_ckpt(tiny["root"] / "fresh" / "ckpt.pt")["fingerprint"] != state["fingerprint"]
    # Same config again: a finished run resumes at its end and rewrites the same outputs.
    again = run(tiny, "fresh", changed, variant="pix2pix")
    assert again["resumed_after_epoch"] == 3 and again["fid_train"] == metrics["fid_train"]


def test_a_finished_run_deletes_its_checkpoint_unless_kept(tiny: dict[str, Any]) -> None:
    params = small_params(64, keep_checkpoint=False)
    checkpoint = tiny["root"] / "dropped" / "ckpt.pt"
    run(tiny, "dropped", params, variant="pix2pix", stop_after_epoch=1)
    assert checkpoint.is_file()  # an interrupted run keeps it, to resume from
    metrics = run(tiny, "dropped", params, variant="pix2pix")
    assert metrics["resumed_after_epoch"] == 1
    assert not checkpoint.exists() and (tiny["root"] / "dropped" / "model" / "generator.pt").is_file()
    run(tiny, "kept", small_params(64, keep_checkpoint=True), variant="pix2pix")
    assert (tiny["root"] / "kept" / "ckpt.pt").is_file()


def test_settings_fields_all_come_from_params(tiny: dict[str, Any]) -> None:
    params = small_params(64)
    s = config(params, "dfgan", 7)
    assert s.seed == 7  # the matrix item, not a params key
    assert (s.variant, s.image_size, s.eigen_floor, s.lambda_fid) == ("dfgan", 64, 1e-12, params["gan"]["lambda_fid"])
    for field in dataclasses.fields(s):
        if field.name not in DERIVED:
            value = getattr(s, field.name)
            assert value == params["gan"][field.name] and type(value) is type(params["gan"][field.name])
    broken = copy.deepcopy(params)
    del broken["gan"]["lambda_l1"]
    with pytest.raises(KeyError, match="lambda_l1"):
        config(broken, "dfgan")


def test_checkpoint_minutes_adds_checkpoints_by_time_and_a_resume_from_one_is_exact(
    tiny: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """gan.checkpoint_minutes, with a fake clock 40 s further on at every reading: the first epoch end a minute
    after the last checkpoint (or the start) saves one too; a run killed right after such a checkpoint resumes
    from it and ends with the uninterrupted run's weights (the trigger is not part of the fingerprint)."""
    import dfgan.gan.training as gan_module

    saved: list[int] = []
    kill_at: dict[str, int | None] = {"epoch": None}
    real_save = gan_module.save_checkpoint

    class Killed(Exception):
        pass

    def recording_save(path: Path, state: dict[str, Any]) -> None:
        real_save(path, state)
        saved.append(state["epoch"])
        if state["epoch"] == kill_at["epoch"]:
            raise Killed

    def fake_clock() -> Any:
        ticks = iter(range(0, 10**6, 40))
        return lambda: next(ticks)

    monkeypatch.setattr(gan_module, "save_checkpoint", recording_save)
    by_epochs = small_params(64, n_epochs=3, n_epochs_decay=1, checkpoint_every=100, jitter_load_scale=1.125)
    by_time = copy.deepcopy(by_epochs)
    by_time["gan"]["checkpoint_minutes"] = 1

    monkeypatch.setattr(gan_module, "_clock", fake_clock())
    full = run(tiny, "by_epochs", by_epochs)
    assert saved == [4]  # the last epoch only (checkpoint_every 100)

    saved.clear()
    monkeypatch.setattr(gan_module, "_clock", fake_clock())
    run(tiny, "by_time", by_time)
    # Readings: start 0; epoch 1 at 40 s (no), epoch 2 at 80 s (save; last = 120), epoch 3 at 160 s (no), epoch 4
    # at 200 s (the last epoch anyway).
    assert saved == [2, 4]

    saved.clear()
    kill_at["epoch"] = 2
    monkeypatch.setattr(gan_module, "_clock", fake_clock())
    with pytest.raises(Killed):
        run(tiny, "killed", by_time)
    assert load_ckpt(tiny["root"] / "killed" / "ckpt.pt")["epoch"] == 2
    kill_at["epoch"] = None
    monkeypatch.setattr(gan_module, "_clock", fake_clock())
    resumed = run(tiny, "killed", by_time)
    assert resumed["resumed_after_epoch"] == 2
    a, b = load_ckpt(tiny["root"] / "by_epochs" / "ckpt.pt"), load_ckpt(tiny["root"] / "killed" / "ckpt.pt")
    assert_same_weights(a["generator"], b["generator"])
    assert_same_weights(a["discriminator"], b["discriminator"])
    assert a["history"] == b["history"]
    for key in ("loss_D", "loss_G_L1", "loss_FID", "fid_train"):
        assert full[key] == resumed[key]


def test_cuda_graphs_are_ignored_on_cpu_with_one_line_and_change_nothing(
    tiny: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dfgan.core import speed

    monkeypatch.setattr(speed, "_NOTICES", set())
    params = small_params(64, jitter_load_scale=1.125)
    plain = run(tiny, "graphs_off", params)
    assert "gan.cuda_graphs" not in capsys.readouterr().out and "cuda_graphs" not in plain
    asked = run(tiny, "graphs_on", small_params(64, jitter_load_scale=1.125, cuda_graphs=True))
    lines = [line for line in capsys.readouterr().out.splitlines() if "cuda_graphs" in line]
    assert lines == ["gan.cuda_graphs: ignored, CUDA graphs need a CUDA device (running on cpu)"]
    assert asked.pop("cuda_graphs") is False
    for key in ("seconds", "steps_per_second"):
        plain.pop(key), asked.pop(key)
    assert asked == plain
    a, b = load_ckpt(tiny["root"] / "graphs_off" / "ckpt.pt"), load_ckpt(tiny["root"] / "graphs_on" / "ckpt.pt")
    assert_same_weights(a["generator"], b["generator"])
    assert a["history"] == b["history"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("variant", ["pix2pix", "dfgan"])
def test_a_captured_gan_step_gives_the_eager_losses(tiny: dict[str, Any], variant: str) -> None:
    from benchmarks.graph_compare import captured_vs_eager_gan

    cuda = torch.device("cuda")
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        rng = np.random.default_rng(0)
        mu, sigma = feature_statistics(rng.normal(size=(40, 16)))
        term = FidTerm(TinyExtractor().to(cuda), FIDLoss(mu, sigma).to(cuda))
        settings = settings_from(small_params(64, device="cuda", amp=False, n_epochs=1, n_epochs_decay=3))
        comparison = captured_vs_eager_gan(settings, variant, cuda, term, steps=7, scheduler_after=[4, 6])
    finally:
        torch.use_deterministic_algorithms(deterministic)
    assert comparison.used and comparison.replays == 7 - comparison.warmup, comparison.problem
    assert all(value < 1e-3 for value in comparison.differences.values()), comparison.differences
    assert comparison.rates == pytest.approx([0.75 * 2e-4, 0.5 * 2e-4])  # the replays read the scheduled rate


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_a_training_run_with_cuda_graphs_replays_its_steps(tiny: dict[str, Any]) -> None:
    deterministic = torch.are_deterministic_algorithms_enabled()
    params = small_params(64, device="cuda", cuda_graphs=True, n_epochs=3)
    params["runtime"]["deterministic"] = False
    root, settings = tiny["root"] / "cuda_graphs", settings_from(params)
    try:
        metrics = train_gan(
            tiny["prepared"], 8, GanConfig.of(settings, "dfgan", 0), GanRunOptions.of(settings),
            GanRunPaths(root / "model", root / "ckpt.pt", root / "live", root / "metrics.json"),
            stats_path=tiny["stats"] / "train_8.npz",
            extractor=TinyExtractor().to(torch.device("cuda")),
        )
    finally:
        torch.use_deterministic_algorithms(deterministic)
    assert metrics["cuda_graphs"] is True and metrics["steps"] == 4 * 2
    for key in ("loss_D", "loss_G_L1", "loss_FID", "fid_train"):
        assert np.isfinite(metrics[key]), key
