"""The training run of the pix2pix baseline and DF-GAN (pix2pix + FID loss), Algorithm 1: data, epochs, the
full-set FID at evaluation epochs, checkpoints, and the outputs (generator, samples, metrics).

The pairs are :mod:`dfgan.gan.pairs`'s, one step is :mod:`dfgan.gan.step`'s, and G is saved by
:mod:`dfgan.gan.generator`.

Runs resume from a checkpoint (kept outside the stage's outputs) only when its fingerprint - the training config,
the training images and the real statistics - matches; a resumed run ends with exactly the weights of an
uninterrupted one (per-epoch batch order and jitter come from a generator seeded by (seed, epoch), and the global
RNG that drives dropout is saved).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from dfgan.core.imaging import outline, save_grid, unit_to_uint8
from dfgan.core.paths import GanRunPaths, fid_train_stats, gan_name
from dfgan.core.runtime import progress_disabled, resolve_device, seed_everything
from dfgan.core.speed import channels_last_input, configure_determinism, learning_rate
from dfgan.core.training_log import TrainingLog, open_live
from dfgan.data.prepared_arrays import ImageSet, load_prepared
from dfgan.gan.checkpoints import (
    checkpoint_state, load_checkpoint, restore_checkpoint, run_fingerprint, save_checkpoint,
)
from dfgan.gan.config import GanConfig, GanRunOptions
from dfgan.gan.fid import FIDLoss, frechet_distance, load_stats
from dfgan.gan.generator import generate, preserved_state, save_generator
from dfgan.gan.inception import load_inception
from dfgan.gan.pairs import epoch_batches, epoch_generator, make_inputs, make_pairs, paired_jitter, uint8_batch_to_unit
from dfgan.gan.step import GanModels, GanStep, build_models, fid_term_for, gan_cuda_graphs

SAMPLES_FILE = "samples.png"
# The progress bar's loss postfix is read from the device every this many steps (a host sync each time; none when
# the bar is off, as in DVC runs); the per-epoch means are read once per epoch.
PROGRESS_EVERY = 50


def evaluate_fid(
    models: GanModels,
    inputs: torch.Tensor,
    extractor: nn.Module,
    real_mu: np.ndarray,
    real_sigma: np.ndarray,
    s: GanConfig,
    device: torch.device,
) -> float:
    """Full-set FID of G(all training inputs) against the real training statistics, leaving training untouched."""
    with preserved_state(models.generator, device):
        fake = generate(models.generator, inputs, s.batch_size, s.eval_train_mode, device)
    with torch.no_grad():
        features = torch.cat(
            [extractor(fake[i : i + s.batch_size].to(device)).cpu() for i in range(0, len(fake), s.batch_size)]
        )
    return frechet_distance(real_mu, real_sigma, features.double(), s.eigen_floor)



def save_samples(
    models: GanModels, data: ImageSet, s: GanConfig, device: torch.device, path: Path
) -> None:
    """Rows: input (disease area) / generated / real, each with the mask's outline where it helps."""
    count = min(s.sample_count, len(data))
    # G sees a full batch of real training inputs (BatchNorm uses batch statistics), of which the first are shown.
    shown = max(count, min(s.batch_size, len(data)))
    inputs, _ = make_pairs(data.images[:shown], data.masks[:shown], s.mask_channel, device)
    with preserved_state(models.generator, device):
        fake = unit_to_uint8(generate(models.generator, inputs, s.batch_size, s.eval_train_mode, device))
    disease = unit_to_uint8(inputs[:, :1])
    rows = [
        [disease[i] for i in range(count)],
        [outline(fake[i], data.masks[i]) for i in range(count)],
        [outline(np.asarray(data.images[i]), data.masks[i]) for i in range(count)],
    ]
    save_grid(rows, path, row_labels=["input", "generated", "real"])



# ----------------------------------------------------------------------------------------------------------------------
# The training run


def _log_epoch(live: TrainingLog, epoch: int, record: dict[str, float]) -> None:
    live.step = epoch
    for name, value in record.items():
        live.log_metric(name, value)
    live.next_step()


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _clock() -> float:
    """Seconds for ``gan.checkpoint_minutes`` (a function, so that tests can fake the clock)."""
    return time.monotonic()


def train_gan(
    prepared_dir: str | Path,
    size: int,
    s: GanConfig,
    options: GanRunOptions,
    files: GanRunPaths,
    stop_after_epoch: int | None = None,
    stats_path: str | Path | None = None,
    extractor: nn.Module | None = None,
) -> dict[str, Any]:
    """Train one GAN (``size`` training images, ``s.variant`` pix2pix or dfgan, ``s.seed``) and write its outputs.

    ``files`` are the run's outputs (:func:`dfgan.core.paths.gan_run`). ``stats_path`` defaults to the pipeline's
    :func:`dfgan.core.paths.fid_train_stats`; ``extractor`` (a test hook) replaces the Inception network, and
    ``stop_after_epoch`` returns right after that epoch's checkpoint (a simulated kill). Returns the metrics written
    to ``files.metrics_path`` (or, when stopped early, {"stopped_after_epoch": k}). Once the outputs are written the
    checkpoint is deleted, unless ``gan.keep_checkpoint`` (``options``: nothing there is part of the fingerprint).
    """
    variant, seed = s.variant, s.seed
    out_dir, checkpoint_path, live_dir, metrics_path = (
        files.out_dir, files.checkpoint_path, files.live_dir, files.metrics_path
    )
    stats_path = Path(stats_path) if stats_path is not None else fid_train_stats(size)
    device = resolve_device(s.device)
    configure_determinism(options.deterministic)
    seed_everything(s.seed)

    # Data: the training rows only - never a validation or test image, kept on the device as uint8; pairs are
    # built and jittered there, per batch.
    data = load_prepared(prepared_dir).train(size)
    images, masks = np.ascontiguousarray(data.images), np.ascontiguousarray(data.masks)
    device_images, device_masks = torch.from_numpy(images).to(device), torch.from_numpy(masks).to(device)
    eval_inputs, _ = make_pairs(images, masks, s.mask_channel, torch.device("cpu"))
    real = load_stats(stats_path)
    batch_size = s.batch_size

    # Models, the frozen feature extractor and the FID loss against the real training statistics.
    graphs = gan_cuda_graphs(s, device)
    models = build_models(s, device, capturable=graphs)
    extractor = extractor if extractor is not None else load_inception(device, options.inception_path)
    fid_term = fid_term_for(s, extractor, FIDLoss(real.mu, real.sigma, s.eigen_floor).to(device), device)

    # Resume only a run of this very configuration.
    fingerprint = run_fingerprint(s, size, data, stats_path)
    state = load_checkpoint(checkpoint_path, fingerprint)
    start_epoch, steps, seconds_before, history = 0, 0, 0.0, []
    if state is not None:
        restore_checkpoint(models, state, device)
        start_epoch, steps, seconds_before, history = state["epoch"], state["steps"], state["seconds"], state["history"]
        print(f"[train_gan] {gan_name(size, variant, seed)}: resuming after epoch {start_epoch} of {s.total_epochs}")
    del state
    step = GanStep(models, s, fid_term, device, graphs)  # after the restore: a graph captures the restored state

    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.rmtree(live_dir, ignore_errors=True)  # the history is replayed from the checkpoint
    live = open_live(live_dir, resume=start_epoch > 0)
    for epoch, record in enumerate(history, start=1):
        _log_epoch(live, epoch, record)

    steps_per_epoch = -(-len(data) // batch_size)
    progress = tqdm(
        total=s.total_epochs * steps_per_epoch,
        initial=start_epoch * steps_per_epoch,
        desc=f"gan {gan_name(size, variant, seed)}",
        unit="step",
        disable=progress_disabled(),
    )
    started = time.perf_counter()
    # gan.checkpoint_minutes: also checkpoint at the end of the first epoch that ends that long after the last
    # checkpoint (or this process's start). At epoch ends only, so a resume replays whole epochs exactly as ever.
    minutes = options.checkpoint_minutes
    checkpoint_seconds = None if minutes is None else 60.0 * minutes
    last_checkpoint = _clock()
    record: dict[str, float] = history[-1] if history else {}
    for epoch in range(start_epoch + 1, s.total_epochs + 1):
        models.generator.train()
        models.discriminator.train()
        lr = learning_rate(models.opt_G)  # a float; a device tensor under CUDA graphs (one sync per epoch)
        monitor_fid = not s.uses_fid_loss and s.is_eval_epoch(epoch)
        names: list[str] = []
        step_losses: list[torch.Tensor] = []  # one (n_losses,) device tensor per step: no host sync in the loop
        generator = epoch_generator(s.seed, epoch, device)
        for batch in epoch_batches(len(data), batch_size, generator):
            rows = batch.to(device)  # already there: the order is drawn on the data's device
            y, mask = uint8_batch_to_unit(device_images[rows], device_masks[rows])
            y, mask = paired_jitter(y, mask, s.jitter_load_scale, s.jitter_flip, generator)
            x, y = channels_last_input(make_inputs(y, mask, s.mask_channel)), channels_last_input(y)
            losses = step(x, y, monitor_fid)
            names = names or list(losses)
            step_losses.append(torch.stack([value.float() for value in losses.values()]))
            steps += 1
            progress.update(1)
            if not progress.disable and steps % PROGRESS_EVERY == 0:  # a host sync, every PROGRESS_EVERY steps
                progress.set_postfix(epoch=epoch, **{k: f"{float(v):.3g}" for k, v in losses.items() if k != "loss_G"})
        models.sched_G.step()
        models.sched_D.step()

        # The epoch's losses leave the device together: one sync per epoch. The same float64 means as ever.
        values = torch.stack(step_losses).double().cpu().numpy() if step_losses else np.empty((0, 0))
        record = {name: _mean(values[:, j].tolist()) for j, name in enumerate(names)}
        record["lr"] = lr
        if s.is_eval_epoch(epoch):  # full-set FID: batches to the host and an eigensolve, a sync (eval epochs only)
            record["fid_train"] = evaluate_fid(models, eval_inputs, extractor, real.mu, real.sigma, s, device)
        history.append(record)
        _log_epoch(live, epoch, record)

        due = checkpoint_seconds is not None and _clock() - last_checkpoint >= checkpoint_seconds
        if s.is_checkpoint_epoch(epoch) or due or epoch == stop_after_epoch:
            seconds = seconds_before + time.perf_counter() - started
            snapshot = checkpoint_state(models, fingerprint, epoch, steps, seconds, history, device)
            save_checkpoint(checkpoint_path, snapshot)  # the state to the host: a sync (checkpoint epochs only)
            last_checkpoint = _clock()
        if epoch == stop_after_epoch:
            progress.close()
            live.end()
            return {"stopped_after_epoch": epoch}
    progress.close()
    live.end()
    seconds = seconds_before + time.perf_counter() - started

    # Outputs: the generator (weights + architecture), samples and the run's metrics.
    save_generator(models.generator, s.generator_spec(), out_dir)
    save_samples(models, data, s, device, out_dir / SAMPLES_FILE)
    metrics = {
        "size": size,
        "variant": variant,
        "seed": seed,
        "train_images": len(data),
        "batch_size": batch_size,
        "epochs": s.total_epochs,
        "steps": steps,
        "seconds": round(seconds, 3),
        "steps_per_second": round(steps / seconds, 4) if seconds > 0 else None,
        "device": str(device),
        "resumed_after_epoch": start_epoch,
        **({"cuda_graphs": step.graphs_used} if s.cuda_graphs else {}),  # asked for: whether the steps replayed
        **{k: v for k, v in record.items() if k != "lr"},
    }
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=1) + "\n")
    if not options.keep_checkpoint:  # G + D + two Adam states: ~0.9 GB per model at paper scale
        checkpoint_path.unlink(missing_ok=True)
    return metrics
