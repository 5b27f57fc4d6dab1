"""Paired training of the pix2pix baseline and DF-GAN (pix2pix + FID loss), Sections 2.1-2.2 and Algorithm 1.

Pairs: the input x is the disease area (the real image inside its mask, -1 = black elsewhere; optionally the mask
as a second channel); the target y is the whole real image. Each step updates D on (x, y) vs (x, G(x)) and then G on

    L_G = L_GAN + lambda_l1 * L1(G(x), y) + lambda_fid * FID(Inception(G(x)), real training statistics).

``gan.fid_mode``: ``differentiable`` sends the FID gradient into G; ``detached`` adds the batch FID as a constant
(what Algorithm 1's FID of a folder of saved images amounts to: a logged value, no gradient). The ``pix2pix``
variant has lambda_fid = 0 and skips Inception in the steps.

Runs resume from a checkpoint (kept outside the stage's outputs) only when its fingerprint - the training config,
the training images and the real statistics - matches; a resumed run ends with exactly the weights of an
uninterrupted one (per-epoch batch order and jitter come from a generator seeded by (seed, epoch), and the global
RNG that drives dropout is saved).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from dfgan.core.imaging import outline, save_grid, unit_to_uint8
from dfgan.core.paths import GanRunPaths, fid_train_stats, gan_name
from dfgan.core.runtime import progress_disabled, resolve_device, seed_everything
from dfgan.core.speed import (
    CapturedStep, adam, channels_last_input, compile_in_place, configure_determinism, cuda_graphs_wanted,
    learning_rate, prefer_channels_last,
)
from dfgan.core.training_log import TrainingLog, open_live
from dfgan.data.prepared_arrays import ImageSet, load_prepared
from dfgan.gan.checkpoints import (
    TrainingState, checkpoint_state, load_checkpoint, restore_checkpoint, run_fingerprint, save_checkpoint,
)
from dfgan.gan.config import GanConfig, GanRunOptions
from dfgan.gan.fid import FIDLoss, covariance_root, frechet_distance, load_stats, sync_free_fid
from dfgan.gan.inception import load_inception
from dfgan.gan.networks import GANLoss, build_discriminator, build_generator, set_requires_grad

GENERATOR_FILE = "generator.pt"
GENERATOR_SPEC_FILE = "generator.json"
SAMPLES_FILE = "samples.png"
# The progress bar's loss postfix is read from the device every this many steps (a host sync each time; none when
# the bar is off, as in DVC runs); the per-epoch means are read once per epoch.
PROGRESS_EVERY = 50
AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}  # gan.amp_dtype


def linear_decay(n_epochs: int, n_epochs_decay: int) -> Callable[[int], float]:
    """The official pix2pix rule: constant for n_epochs, then linear decay towards zero over n_epochs_decay."""

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)

    return factor


# ----------------------------------------------------------------------------------------------------------------------
# Paired data


def make_inputs(targets: torch.Tensor, masks: torch.Tensor, mask_channel: bool) -> torch.Tensor:
    """The generator's input: the real pixels inside the mask, -1 (black) elsewhere; plus the mask in [-1, 1]."""
    disease_area = torch.where(masks > 0.5, targets, torch.full_like(targets, -1.0))
    if mask_channel:
        return torch.cat([disease_area, masks * 2.0 - 1.0], dim=1)
    return disease_area


def make_pairs(
    images: np.ndarray, masks: np.ndarray, mask_channel: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and {0,1} masks (n, S, S) -> inputs x (n, C, S, S) and targets y (n, 1, S, S) in [-1, 1]."""
    targets, mask = unit_targets_and_masks(images, masks, device)
    return make_inputs(targets, mask, mask_channel), targets


def unit_targets_and_masks(
    images: np.ndarray, masks: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (n, S, S) -> (n, 1, S, S) tensors on ``device``: images in [-1, 1], masks in {0., 1.}."""
    to_device = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    return uint8_batch_to_unit(to_device(images), to_device(masks))


def uint8_batch_to_unit(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 tensors (n, S, S), wherever they live -> images in [-1, 1] and {0., 1.} masks, (n, 1, S, S) float32.

    The arithmetic of :func:`dfgan.core.imaging.uint8_to_unit`, done where the tensors are: the training subset stays on
    the device as uint8 (a quarter of float32's memory) and each batch is converted there.
    """
    return (images.float() / 127.5 - 1.0).unsqueeze(1), masks.float().unsqueeze(1)


def paired_jitter(
    targets: torch.Tensor, masks: torch.Tensor, load_scale: float, flip: bool, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official paired augmentation: resize to load_scale x S, random crop back to S, random horizontal flip.

    Image and mask get the same crop and flip; the input is built afterwards from the jittered pair, so it stays
    exactly the real pixels inside the (jittered) mask.
    """
    n, _, size, _ = targets.shape
    # Draw every random number whether or not it is used, so the stream does not depend on the settings' branches.
    # Drawn where the generator lives (the data's device, see epoch_generator): no copy and no host sync.
    offsets = torch.randint(0, 1 << 30, (n, 2), generator=generator, device=generator.device)
    flips = torch.rand(n, generator=generator, device=generator.device) < 0.5
    load = int(round(size * load_scale))
    if load > size:
        targets = F.interpolate(targets, size=(load, load), mode="bicubic", align_corners=False).clamp(-1.0, 1.0)
        masks = F.interpolate(masks, size=(load, load), mode="nearest")
        corners = (offsets % (load - size + 1)).to(targets.device)
        targets, masks = crop_batch(targets, corners, size), crop_batch(masks, corners, size)
    if flip:
        flip_mask = flips.to(targets.device).view(n, 1, 1, 1)
        targets = torch.where(flip_mask, targets.flip(-1), targets)
        masks = torch.where(flip_mask, masks.flip(-1), masks)
    return targets, masks


def crop_batch(batch: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """(n, C, L, L) -> (n, C, size, size): sample i cut at its own top-left corner ``corners[i] = (y, x)``.

    Two gathers on the tensors' device (no per-sample Python loop, no host sync); the very values of slicing."""
    n, channels, height, width = batch.shape
    steps = torch.arange(size, device=batch.device)
    rows = (corners[:, 0:1] + steps).view(n, 1, size, 1).expand(n, channels, size, width)
    batch = batch.gather(2, rows)
    cols = (corners[:, 1:2] + steps).view(n, 1, 1, size).expand(n, channels, size, size)
    return batch.gather(3, cols)


def epoch_generator(seed: int, epoch: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of one epoch's batch order and jitter, seeded by (seed, epoch) so a resume replays it.

    It lives on ``device``, the training data's: on a GPU the order and the jitter are drawn there (no copy per
    batch, no sync); on a CPU it is the CPU generator it always was, so CPU results are unchanged. A GPU draws
    other numbers from the same seed than a CPU (a GPU run is exact for its own device, not across devices)."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state) & ((1 << 63) - 1))


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """ceil(n / batch_size) full batches over a fresh permutation; the short last batch is refilled.

    Refilled rather than dropped: topping it up with the first images of this epoch's order keeps every image in
    every epoch, and every batch - so every FID term and every BatchNorm - sees exactly ``batch_size`` images (a
    batch FID of 2 samples would otherwise count as much as one of 16).
    """
    if n < batch_size:
        raise ValueError(f"{n} training images cannot fill a batch of {batch_size}: lower gan.batch_size")
    order = torch.randperm(n, generator=generator, device=generator.device)
    for start in range(0, n, batch_size):
        batch = order[start : start + batch_size]
        if len(batch) < batch_size:
            batch = torch.cat([batch, order[: batch_size - len(batch)]])
        yield batch


# ----------------------------------------------------------------------------------------------------------------------
# Models, optimisers and the training step


@dataclass
class GanModels(TrainingState):
    """The checkpointed state of a run and its (stateless) GAN loss."""

    gan_loss: GANLoss


def build_models(s: GanConfig, device: torch.device, capturable: bool = False) -> GanModels:
    """G, D (channels_last on CUDA, compiled when ``gan.compile`` asks), their Adam optimisers (fused on CUDA;
    ``capturable`` for CUDA graphs, see :func:`gan_cuda_graphs`), linear-decay schedulers and (fp16 only) gradient
    scalers."""
    generator = build_generator(s.image_size, s.in_channels, s.ngf, 1, s.norm, s.dropout, s.init_gain).to(device)
    discriminator = build_discriminator(s.in_channels + 1, s.ndf, s.n_layers_d, s.norm, s.init_gain).to(device)
    for net in (generator, discriminator):
        compile_in_place(prefer_channels_last(net, device), s.compile)
    opt_G = adam(generator.parameters(), device, capturable, lr=s.lr, betas=(s.beta1, s.beta2))
    opt_D = adam(discriminator.parameters(), device, capturable, lr=s.lr, betas=(s.beta1, s.beta2))
    decay = linear_decay(s.n_epochs, s.n_epochs_decay)
    scaling = autocast_dtype(s, device) == torch.float16  # bf16 has fp32's range: no loss scaling needed
    return GanModels(
        generator,
        discriminator,
        opt_G,
        opt_D,
        torch.optim.lr_scheduler.LambdaLR(opt_G, decay),
        torch.optim.lr_scheduler.LambdaLR(opt_D, decay),
        torch.amp.GradScaler(device.type, enabled=scaling),
        torch.amp.GradScaler(device.type, enabled=scaling),
        GANLoss(s.gan_mode).to(device),
    )


def autocast_dtype(s: GanConfig, device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype, or None: AMP only when asked for and on CUDA."""
    if not (s.amp and device.type == "cuda"):
        return None
    return AUTOCAST_DTYPES[s.amp_dtype]


def autocast_context(
    s: GanConfig, device: torch.device, cache_enabled: bool = True
) -> Callable[[], contextlib.AbstractContextManager]:
    """Autocast as the settings ask, or nothing. ``cache_enabled=False`` inside a CUDA graph (the cast weights must
    not be cached across a capture); the values are the same either way."""
    dtype = autocast_dtype(s, device)
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache_enabled)


class FidTerm:
    """The FID loss of a generated batch: Inception features -> Fréchet distance to the real training statistics.

    ``bf16_features``: the Inception forward (and backward) under bfloat16 autocast; the features come back in
    float32 and the Fréchet distance is computed as always (float64 eigenproblem). ``sync_free``: the distance by
    :func:`dfgan.gan.fid.sync_free_fid` (CUDA graphs); otherwise by ``eigvalsh``, which on a GPU waits for the device
    once per call (its error check): the one host sync left in an eager DF-GAN step."""

    def __init__(
        self, extractor: nn.Module, fid_loss: FIDLoss, bf16_features: bool = False, sync_free: bool = False
    ) -> None:
        self.extractor = extractor
        self.fid_loss = fid_loss
        self.options = {"bf16": True} if bf16_features else {}
        self.sync_free = sync_free
        self.sigma_root = covariance_root(fid_loss.sigma) if sync_free else None  # once, before any capture

    def distance(self, features: torch.Tensor) -> torch.Tensor:
        if self.sync_free:
            return sync_free_fid(self.fid_loss, features, self.sigma_root)
        return self.fid_loss(features)

    def __call__(self, fake: torch.Tensor, differentiable: bool) -> torch.Tensor:
        if differentiable:
            return self.distance(self.extractor(fake, **self.options))
        with torch.no_grad():
            return self.distance(self.extractor(fake.detach(), **self.options))


def fid_term_for(s: GanConfig, extractor: nn.Module, fid_loss: FIDLoss, device: torch.device) -> FidTerm:
    """The FID term a run uses: Inception in bf16 only when asked for and mixed precision is on (CUDA)."""
    return FidTerm(extractor, fid_loss, bf16_features=s.inception_bf16 and autocast_dtype(s, device) is not None)


def train_step(
    models: GanModels,
    x: torch.Tensor,
    y: torch.Tensor,
    s: GanConfig,
    fid_term: FidTerm | None,
    autocast: Callable[[], contextlib.AbstractContextManager],
    monitor_fid: bool = False,
) -> dict[str, torch.Tensor]:
    """One pix2pix iteration (D, then G) with the optional FID term; returns the losses as detached 0-d tensors
    on the device (reading them is a host sync: the training loop does it once per epoch).

    ``monitor_fid`` computes the batch FID as a value only (used for the baseline at evaluation epochs).
    """
    return _train_step(models, x, y, s, fid_term, autocast, monitor_fid)[0]


def _train_step(
    models: GanModels,
    x: torch.Tensor,
    y: torch.Tensor,
    s: GanConfig,
    fid_term: FidTerm | None,
    autocast: Callable[[], contextlib.AbstractContextManager],
    monitor_fid: bool = False,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """:func:`train_step`, also returning G(x) of the step (detached)."""
    G, D, gan_loss = models.generator, models.discriminator, models.gan_loss
    with autocast():
        fake = G(x)

    # D: real pairs -> real, (x, G(x)) with G detached -> fake; halved, as in pix2pix, to slow D relative to G.
    set_requires_grad(D, True)
    models.opt_D.zero_grad(set_to_none=True)
    with autocast():
        loss_D_fake = gan_loss(D(torch.cat([x, fake.detach()], 1)), False)
        loss_D_real = gan_loss(D(torch.cat([x, y], 1)), True)
        loss_D = 0.5 * (loss_D_fake + loss_D_real)
    models.scaler_D.scale(loss_D).backward()
    models.scaler_D.step(models.opt_D)
    models.scaler_D.update()

    # G: fool the (just updated) D, stay close to y in L1, and (DF-GAN) fit the real feature distribution.
    set_requires_grad(D, False)
    models.opt_G.zero_grad(set_to_none=True)
    with autocast():
        loss_G_GAN = gan_loss(D(torch.cat([x, fake], 1)), True)
    loss_G_L1 = F.l1_loss(fake.float(), y.float())
    loss_G = loss_G_GAN + s.lambda_l1 * loss_G_L1
    loss_FID: torch.Tensor | None = None
    if fid_term is not None and len(fake) >= 2 and (s.uses_fid_loss or monitor_fid):
        differentiable = s.uses_fid_loss and s.fid_mode == "differentiable"
        loss_FID = fid_term(fake, differentiable)
        if s.uses_fid_loss:
            loss_G = loss_G + s.lambda_fid * loss_FID.float()
    models.scaler_G.scale(loss_G).backward()
    models.scaler_G.step(models.opt_G)
    models.scaler_G.update()
    set_requires_grad(D, True)

    losses = {
        "loss_D": loss_D.detach(),
        "loss_G_GAN": loss_G_GAN.detach(),
        "loss_G_L1": loss_G_L1.detach(),
        "loss_G": loss_G.detach(),
    }
    if loss_FID is not None:
        losses["loss_FID"] = loss_FID.detach()
    return losses, fake.detach()


def gan_cuda_graphs(s: GanConfig, device: torch.device) -> bool:
    """Whether this run replays its steps as CUDA graphs (``gan.cuda_graphs``): on CUDA, when nothing blocks it;
    otherwise the option is ignored with one printed line. Blockers: torch.compile (its own graphs and guards),
    float16 autocast (the gradient scaler reads its inf check on the host) and deterministic algorithms (the FID
    Inception's deterministic resize builds its weights on the CPU and copies them per call)."""
    blockers = {
        f"gan.compile is {s.compile}": s.compile != "off",
        "float16 autocast scales gradients with a host check": autocast_dtype(s, device) == torch.float16,
        "runtime.deterministic: the FID Inception's deterministic resize copies host tensors per call":
            s.uses_fid_loss and torch.are_deterministic_algorithms_enabled(),
    }
    return cuda_graphs_wanted(s.cuda_graphs, device, "gan.cuda_graphs", blockers)


class GanStep:
    """The training step of a run, eager or (``graphs``) replayed as one CUDA graph: ``step(x, y, monitor_fid)``
    -> the losses as detached 0-d device tensors (:func:`train_step`'s).

    With graphs, the whole step - G forward, D update, G update with the FID term
    (:func:`dfgan.gan.fid.sync_free_fid`) - is one graph (:class:`dfgan.core.speed.CapturedStep`, after 3 eager
    warm-up steps). The baseline's monitored batch
    FID (``monitor_fid``, evaluation epochs only) is computed eagerly from the graph's G(x), as the eager step does.
    The returned losses are copies, safe from the next replay."""

    def __init__(self, models: GanModels, s: GanConfig, fid_term: FidTerm | None, device: torch.device,
                 graphs: bool = False) -> None:
        self.models, self.s, self.fid_term = models, s, fid_term
        self.autocast = autocast_context(s, device)
        self.captured: CapturedStep | None = None
        if graphs:
            graph_fid = None if fid_term is None else FidTerm(
                fid_term.extractor, fid_term.fid_loss, bool(fid_term.options), sync_free=True)
            graph_autocast = autocast_context(s, device, cache_enabled=False)
            self.captured = CapturedStep(
                lambda x, y: _train_step(models, x, y, s, graph_fid, graph_autocast), name="gan.cuda_graphs")

    @property
    def graphs_used(self) -> bool:
        """Whether the steps replay as a CUDA graph (False when the capture failed or never happened)."""
        return self.captured is not None and self.captured.captured

    def __call__(self, x: torch.Tensor, y: torch.Tensor, monitor_fid: bool = False) -> dict[str, torch.Tensor]:
        if self.captured is None:
            return train_step(self.models, x, y, self.s, self.fid_term, self.autocast, monitor_fid)
        losses, fake = self.captured(x, y)
        losses = dict(losses)
        if monitor_fid and self.fid_term is not None and len(fake) >= 2 and not self.s.uses_fid_loss:
            losses["loss_FID"] = self.fid_term(fake, differentiable=False)
        return {name: value.clone() for name, value in losses.items()}


# ----------------------------------------------------------------------------------------------------------------------
# Generation (also used by the synthesis stage)


@contextlib.contextmanager
def preserved_state(net: nn.Module, device: torch.device) -> Iterator[None]:
    """Run G without side effects: buffers (BatchNorm running stats), mode and the global RNG are restored."""
    buffers = {name: b.detach().clone() for name, b in net.named_buffers()}
    was_training = net.training
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        try:
            yield
        finally:
            with torch.no_grad():
                for name, b in net.named_buffers():
                    b.copy_(buffers[name])
            net.train(was_training)


def generate(
    generator: nn.Module, inputs: torch.Tensor, batch_size: int, train_mode: bool, device: torch.device
) -> torch.Tensor:
    """G(inputs) batch by batch, in train mode (official pix2pix test: dropout as noise, batch statistics) or eval.

    Every forward pass sees ``batch_size`` inputs: in train mode BatchNorm normalises with the batch's own
    statistics, so a short last batch is padded with inputs from the start of the set (wrapping around) and the
    extra outputs are discarded.
    """
    generator.train(train_mode)
    outputs = []
    n = len(inputs)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            wrapped = torch.arange(start, start + batch_size) % n  # pad a short last batch from the start
            batch = inputs[wrapped] if count < batch_size else inputs[start : start + count]
            outputs.append(generator(batch.to(device)).float().cpu()[:count])
    return torch.cat(outputs)


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


# ----------------------------------------------------------------------------------------------------------------------
# Outputs


def save_generator(generator: nn.Module, spec: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in generator.state_dict().items()}, out_dir / GENERATOR_FILE)
    (out_dir / GENERATOR_SPEC_FILE).write_text(json.dumps(spec, indent=1) + "\n")


def load_generator(model_dir: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild G from ``generator.json`` and load ``generator.pt`` (weights only)."""
    model_dir = Path(model_dir)
    for name in (GENERATOR_FILE, GENERATOR_SPEC_FILE):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir / name} is missing: run the 'train_gan' stage first")
    spec = json.loads((model_dir / GENERATOR_SPEC_FILE).read_text())
    generator = build_generator(
        spec["image_size"], spec["in_channels"], spec["ngf"], spec["out_channels"], spec["norm"], spec["dropout"]
    )
    generator.load_state_dict(torch.load(model_dir / GENERATOR_FILE, map_location="cpu", weights_only=True))
    return generator.to(device), spec


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
