"""Benchmark: one full training step (D update + G update) per variant and image size.

    python -m benchmarks.bench_gan_step [--sizes 64 128 256] [--batch 16] [--repeats 3] [--repeats-large 1]

Networks and losses come from params.yaml (gan section); only the image size and the batch are overridden. The
DF-GAN step includes the TF-Inception forward/backward at 299x299 and the FID term against random real statistics.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

from dfgan.config import load_params
from dfgan.fid import FIDLoss
from dfgan.gan import FidTerm, GanSettings, autocast_context, build_models, make_inputs, train_step
from dfgan.inception import FEATURE_DIM, load_inception
from dfgan.runtime import resolve_device

LARGE = 256  # sizes from here on use --repeats-large (seconds per step on a CPU)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(s: GanSettings, device: torch.device, batch: int, repeats: int, fid_term: FidTerm) -> float:
    torch.manual_seed(s.seed)
    models = build_models(s, device)
    y = torch.rand(batch, 1, s.image_size, s.image_size, device=device) * 2 - 1
    masks = (torch.rand_like(y) > 0.9).float()
    x = make_inputs(y, masks, s.mask_channel)
    autocast = autocast_context(s, device)
    times = []
    for _ in range(repeats + 1):  # the first step warms up (allocations, kernel selection)
        synchronize(device)
        started = time.perf_counter()
        train_step(models, x, y, s, fid_term, autocast)
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repeats-large", type=int, default=1, help=f"repeats for sizes >= {LARGE}")
    parser.add_argument("--device", default=None, help="default: gan.device from the params")
    args = parser.parse_args()

    params = copy.deepcopy(load_params(args.params))
    device = resolve_device(args.device or params["gan"]["device"])
    extractor = load_inception(device)
    rng = np.random.default_rng(0)
    real = np.abs(rng.normal(size=(FEATURE_DIM * 2, FEATURE_DIM)).astype(np.float32)) * 0.4
    fid_loss = FIDLoss(real.mean(0), np.cov(real, rowvar=False)).to(device)
    fid_term = FidTerm(extractor, fid_loss)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {name}; batch {args.batch}; ngf {params['gan']['ngf']}; amp {params['gan']['amp']}")
    print(f"{'variant':<8} {'size':>5} {'s/step':>8} {'steps/s':>8}")
    for size in args.sizes:
        params["data"]["image_size"] = size
        repeats = args.repeats_large if size >= LARGE else args.repeats
        for variant in ("pix2pix", "dfgan"):
            s = GanSettings.from_params(params, variant)
            seconds = time_steps(s, device, args.batch, repeats, fid_term)
            print(f"{variant:<8} {size:>5} {seconds:>8.3f} {1 / seconds:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
