"""A trained generator: saved as weights plus its architecture, loaded back, and run over a set of inputs.

Shared by the training loop (:mod:`dfgan.gan.training`), which saves G and previews it, and the synthesis stage
(:mod:`dfgan.gan.synthesis`), which loads G and generates from it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from dfgan.gan.networks import build_generator

GENERATOR_FILE = "generator.pt"
GENERATOR_SPEC_FILE = "generator.json"


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

