"""Predicted wall time of a params profile on this device, from a few timed steps of each model kind.

    python -m benchmarks.estimate --params params_paper.yaml [--repeats 2]

Times one GAN step of each variant, one synthesis batch and one U-Net++ step at the profile's image size, batch
sizes, precision and compile settings (through the code the stages run), multiplies them by the step counts the
profile implies (GAN: epochs x ceil(N_train / batch) per size, variant and GAN seed; synthesis: plain and flipped
lesions; U-Net++: rounds x steps per round per size, condition, augmentation and seed) and prints the time per stage
and in total. Not counted: prepare, the FID statistics, validation, evaluation and the report (minutes at most).
"""

from __future__ import annotations

import argparse
import copy

from dfgan.acceleration import configure_determinism, runtime_deterministic
from dfgan.config import load_params
from dfgan.inception import load_inception
from dfgan.runtime import resolve_device
from dfgan.throughput import (
    device_name, planned_work, random_fid_term, time_gan_step, time_seg_step, time_synthesis_batch,
)


def hours(seconds: float) -> str:
    return f"{seconds / 3600:8.2f} h" if seconds >= 3600 else f"{seconds / 60:8.1f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--repeats", type=int, default=2, help="timed steps of each kind (after one warm-up)")
    args = parser.parse_args()

    params = load_params(args.params)
    configure_determinism(runtime_deterministic(params))
    device = resolve_device(params["gan"]["device"])
    size = int(params["data"]["image_size"])
    extractor = load_inception(device, params["fid"]["inception_path"])
    seg = copy.deepcopy(params["seg"])
    seg["encoder_weights"] = None  # timing only: random weights, nothing to download

    print(f"profile {args.params} on {device_name(device)}: {size} px, sizes {params['sizes']}")
    fid_term = random_fid_term(extractor, device)
    per_unit = {
        f"train_gan ({variant})": time_gan_step(params, variant, device, fid_term, args.repeats)
        for variant in params["variants"]
    }
    per_unit["synthesize"] = time_synthesis_batch(params, device, extractor, args.repeats)
    per_unit["seg (all conditions)"] = time_seg_step(seg, size, device, args.repeats)
    print(f"{'stage':<22} {'runs':>5} {'units':>12} {'':<18} {'s/unit':>8} {'predicted':>11}")
    total = 0.0
    for work in planned_work(params):
        seconds = per_unit[work.stage] * work.units
        total += seconds
        print(f"{work.stage:<22} {work.runs:>5} {work.units:>12,} {work.unit:<18} {per_unit[work.stage]:>8.3f} "
              f"{hours(seconds):>11}")
    print(f"{'total':<22} {'':>5} {'':>12} {'':<18} {'':>8} {hours(total):>11}")


if __name__ == "__main__":
    main()
