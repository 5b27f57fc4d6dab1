"""What shapes one GAN training run (:class:`GanConfig`, fingerprinted for resuming) and what does not
(:class:`GanRunOptions`), both read from the settings by the train_gan stage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dfgan.core.rules import VARIANTS
from dfgan.core.settings import Settings, variant_lambda_fid
from dfgan.gan.networks import unet_depth

# GanConfig fields that do not come from the gan section under their own name.
DERIVED = ("variant", "image_size", "lambda_fid", "eigen_floor", "seed")


@dataclass(frozen=True)
class GanConfig:
    """Everything that shapes a training run: the ``gan`` section's model, loss and optimisation keys, plus the image
    size, the variant (and its FID weight), ``fid.eigen_floor`` and the seed.

    Its fields and their values are the run's fingerprint (:func:`dfgan.gan.checkpoints.run_fingerprint`): rename or
    retype one and no earlier checkpoint resumes.
    """

    variant: str
    image_size: int
    ngf: int
    ndf: int
    n_layers_d: int
    norm: str
    dropout: float
    init_gain: float
    mask_channel: bool
    jitter_flip: bool
    jitter_load_scale: float
    gan_mode: str
    lambda_l1: float
    lambda_fid: float
    fid_mode: str
    eigen_floor: float
    lr: float
    beta1: float
    beta2: float
    batch_size: int
    n_epochs: int
    n_epochs_decay: int
    checkpoint_every: int
    fid_eval_every: int
    eval_train_mode: bool
    amp: bool
    amp_dtype: str
    inception_bf16: bool  # the FID loss's Inception under bf16 autocast (CUDA with amp only); fp32 otherwise
    compile: str  # off | default | max-autotune (benchmarks: reduce-overhead)
    cuda_graphs: bool  # replay each training step as one CUDA graph (CUDA only; ignored with a printed line on CPU)
    device: str
    seed: int
    sample_count: int

    @classmethod
    def of(cls, settings: Settings, variant: str, seed: int) -> GanConfig:
        """The config of one model; ``seed`` is one of ``gan.seeds`` (one GAN per seed, a DVC matrix item)."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant '{variant}' (expected one of {VARIANTS})")
        gan = settings.gan
        derived = {
            "variant": variant,
            "image_size": settings.data.image_size,
            "lambda_fid": variant_lambda_fid(gan, variant),
            "eigen_floor": settings.fid.eigen_floor,
            "seed": seed,
        }
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{name: derived[name] if name in DERIVED else getattr(gan, name) for name in names})

    @property
    def in_channels(self) -> int:
        return 2 if self.mask_channel else 1

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    @property
    def uses_fid_loss(self) -> bool:
        return self.lambda_fid > 0

    def is_eval_epoch(self, epoch: int) -> bool:
        return epoch % self.fid_eval_every == 0 or epoch == self.total_epochs

    def is_checkpoint_epoch(self, epoch: int) -> bool:
        return epoch % self.checkpoint_every == 0 or epoch == self.total_epochs

    def generator_spec(self) -> dict[str, Any]:
        """What :func:`dfgan.gan.generator.load_generator` needs to rebuild G (written as ``generator.json``)."""
        return {
            "image_size": self.image_size,
            "num_downs": unet_depth(self.image_size),
            "in_channels": self.in_channels,
            "out_channels": 1,
            "ngf": self.ngf,
            "norm": self.norm,
            "dropout": self.dropout,
            "mask_channel": self.mask_channel,
        }


@dataclass(frozen=True)
class GanRunOptions:
    """What a training run reads besides its config, none of it part of the fingerprint: when to checkpoint and
    whether to keep the checkpoint, where the FID Inception is, and ``runtime.deterministic``."""

    checkpoint_minutes: float | None
    keep_checkpoint: bool
    inception_path: str | None
    deterministic: bool

    @classmethod
    def of(cls, settings: Settings) -> GanRunOptions:
        return cls(
            checkpoint_minutes=settings.gan.checkpoint_minutes,
            keep_checkpoint=settings.gan.keep_checkpoint,
            inception_path=settings.fid.inception_path,
            deterministic=settings.runtime.deterministic,
        )
