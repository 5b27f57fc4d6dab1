"""One GAN training step (Sections 2.1-2.2): D on (x, y) vs (x, G(x)), then G on

    L_G = L_GAN + lambda_l1 * L1(G(x), y) + lambda_fid * FID(Inception(G(x)), real training statistics),

with the models and optimisers it updates, mixed precision, the FID term and the step replayed as a CUDA graph.

``gan.fid_mode``: ``differentiable`` sends the FID gradient into G; ``detached`` adds the batch FID as a constant
(what Algorithm 1's FID of a folder of saved images amounts to: a logged value, no gradient). The ``pix2pix``
variant has lambda_fid = 0 and skips Inception in the steps.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dfgan.core.speed import CapturedStep, adam, compile_in_place, cuda_graphs_wanted, prefer_channels_last
from dfgan.gan.checkpoints import TrainingState
from dfgan.gan.config import GanConfig
from dfgan.gan.fid import FIDLoss, covariance_root, sync_free_fid
from dfgan.gan.networks import GANLoss, build_discriminator, build_generator, set_requires_grad

AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}  # gan.amp_dtype


def linear_decay(n_epochs: int, n_epochs_decay: int) -> Callable[[int], float]:
    """The official pix2pix rule: constant for n_epochs, then linear decay towards zero over n_epochs_decay."""

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)

    return factor



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

