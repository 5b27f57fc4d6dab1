"""Pretrained encoder weights from a file on disk (``seg.encoder_weights_path``), for machines without network.

``seg.encoder_weights: imagenet`` makes segmentation-models-pytorch (0.6) download ``config.json`` and
``model.safetensors`` of the Hugging Face repository ``smp-hub/<encoder>.imagenet`` (``huggingface_hub``; neither
``TORCH_HOME`` nor the torch.hub cache is used). Offline there are two ways to the same weights:

- pre-fill the Hugging Face cache on a machine with network (``python -c "import segmentation_models_pytorch as smp;
  smp.UnetPlusPlus('resnet34', encoder_weights='imagenet')"``), copy ``$HF_HOME/hub`` (default
  ``~/.cache/huggingface/hub``) to the same place on the cluster and run with ``HF_HUB_OFFLINE=1``;
- or name the weights file in ``seg.encoder_weights_path``: nothing is downloaded and ``seg.encoder_weights`` is then
  only the label of what the file holds. :func:`model_with_encoder_file` accepts a ``.safetensors`` or a
  ``torch.save``'d ``.pth``/``.pt`` state dict (a checkpoint dict with a ``state_dict`` entry too) in either layout:

  * the encoder as smp downloads it, with 3 input channels (the hub's ``model.safetensors``, or torchvision's
    ``resnet34-*.pth`` for ``resnet34``: smp's ResNet encoders are torchvision ResNets whose loading drops ``fc``).
    The first convolution is then adapted to the model's channels exactly as smp adapts downloaded weights (for one
    channel: the sum over RGB), and the model, decoder included, is the one ``imagenet`` gives for the same seed;
  * the encoder of this very model (``model.encoder.state_dict()``, e.g. with 1 input channel).

  Anything else stops with an :class:`~dfgan.core.errors.InputError` naming the file and the first mismatched keys.
  DVC tracks the path (a param), not the file's content: give changed weights a new file name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from dfgan.core.errors import InputError

KEY = "seg.encoder_weights_path"
SHOWN_KEYS = 3  # keys named in the error for each kind of mismatch


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file or of a ``torch.save``'d state dict (or checkpoint with one)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{KEY}: no file at {path} (a state dict of the U-Net++ encoder: .safetensors or .pth)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file  # a dependency of segmentation-models-pytorch

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise InputError(f"{KEY}: cannot read {path} as a state dict: {type(error).__name__}: {error}") from error
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{KEY}: {path} is not a state dict (a mapping of parameter names to tensors)")
    return dict(state)


Problem = tuple[str, str]  # (kind, what): ("missing", key), ("unexpected", key), ("shape", "key: [..] in the file, ..")


def _problems_from(message: str) -> list[Problem]:
    """torch's load_state_dict error as one item per key."""
    problems: list[Problem] = []
    for line in (line.strip() for line in message.splitlines()[1:]):
        keys = re.findall(r'"([^"]+)"', line)
        size = re.match(r"size mismatch for (\S+): copying a param with shape torch\.Size\((\[.*?\])\) from "
                        r"checkpoint, the shape in current model is torch\.Size\((\[.*?\])\)", line)
        if line.startswith("Missing key(s)"):
            problems += [("missing", k) for k in keys]
        elif line.startswith("Unexpected key(s)"):
            problems += [("unexpected", k) for k in keys]
        elif size:
            problems.append(("shape", f"{size[1]}: {size[2]} in the file, {size[3]} in the model"))
        elif line:
            problems.append(("other", line))
    return problems or [("other", message.strip())]


def describe_problems(problems: list[Problem]) -> str:
    """``2 keys missing (a, b), 1 unexpected (c), 1 of another shape (d: [..] in the file, [..] in the model)``."""
    labels = {"missing": "missing", "unexpected": "unexpected", "shape": "of another shape", "other": "other errors"}
    parts = []
    for kind, label in labels.items():
        items = [what for k, what in problems if k == kind]
        if items:
            shown = ", ".join(items[:SHOWN_KEYS]) + (", ..." if len(items) > SHOWN_KEYS else "")
            parts.append(f"{len(items)} {label} ({shown})")
    return ", ".join(parts)


def load_problems(encoder: nn.Module, state: Mapping[str, torch.Tensor]) -> list[Problem]:
    """Load ``state`` strictly into ``encoder``; [] when it loaded, else each mismatched key (and then ``encoder`` may
    be partly loaded). Goes through the encoder's own ``load_state_dict``, which drops the classifier entries (``fc.*``
    for a ResNet) that smp's and torchvision's files carry and, for some encoders, renames old keys."""
    try:
        encoder.load_state_dict(dict(state))  # a copy: smp's encoders pop keys from the dict they are given
    except RuntimeError as error:
        return _problems_from(str(error))
    return []


def model_with_encoder_file(build: Callable[[int], nn.Module], in_channels: int, path: str | Path) -> nn.Module:
    """``build(channels)`` (a model with a random ``.encoder``, nothing downloaded) with the encoder loaded from
    ``path``: the 3-channel layout smp downloads, adapted as smp adapts it, or the model's own encoder layout."""
    state = read_state_dict(path)
    if in_channels != 3:
        with torch.random.fork_rng(devices=[]):  # a look at the layout draws nothing from the run's random stream
            rgb = build(3).encoder
        rgb_problems = load_problems(rgb, state)
        if not rgb_problems and hasattr(rgb, "set_in_channels"):
            # As smp does with downloaded weights: build at 3 channels, load, then adapt the first convolution
            # (the random draws are the same as with encoder_weights: imagenet, so the decoder starts the same).
            model = build(3)
            load_problems(model.encoder, state)
            model.encoder.set_in_channels(in_channels, pretrained=True)
            return model
    model = build(in_channels)
    problems = load_problems(model.encoder, state)
    if problems:
        if in_channels != 3 and len(rgb_problems) < len(problems):
            problems, layout = rgb_problems, "the 3-channel encoder smp downloads"
        else:
            layout = f"this model's encoder ({in_channels} input channel{'s' if in_channels != 1 else ''})"
        raise InputError(f"{KEY}: {path} does not fit {layout}: keys {describe_problems(problems)}; it needs a state "
                         f"dict of the same encoder (seg.encoder), with 3 input channels or {in_channels}")
    return model
