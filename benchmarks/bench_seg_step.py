"""Benchmark: one U-Net++ optimizer step (forward, BCE + Dice, backward, Adam) per image size and speed setting.

    python -m benchmarks.bench_seg_step [--params params_paper.yaml] [--sizes 256] [--settings fp32 bf16 compiled]

The model (encoder, decoder widths, batch size) comes from the params file's seg section, built as training builds
it (channels_last on CUDA). Settings: ``fp32``; ``bf16`` (autocast, CUDA only); ``compiled`` (torch.compile
``default``, fp32); ``compiled-bf16``; ``cudagraphs`` (torch.compile ``reduce-overhead``, bf16, CUDA only);
``graphs`` (``seg.cuda_graphs``: the whole step captured by hand as one CUDA graph, fp32 as training runs; CUDA only).
Prints seconds per step, steps/s and images/s; a setting that fails prints its error and the others go on.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from benchmarks.throughput import device_name, time_seg_step
from dfgan.core.params_file import load_settings
from dfgan.core.runtime import resolve_device
from dfgan.core.speed import configure_determinism
from dfgan.seg.config import SegConfig

# setting -> (precision, compile mode, seg.cuda_graphs)
SETTINGS = {
    "fp32": ("fp32", "off", False),
    "bf16": ("bf16", "off", False),
    "compiled": ("fp32", "default", False),
    "compiled-bf16": ("bf16", "default", False),
    "cudagraphs": ("bf16", "reduce-overhead", False),
    "graphs": ("fp32", "off", True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=["fp32", "bf16", "compiled"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None, help="default: seg.device from the params")
    args = parser.parse_args()

    settings = load_settings(args.params)
    configure_determinism(settings.runtime.deterministic)
    # Timing only: random weights, nothing to download.
    seg = dataclasses.replace(SegConfig.of(settings.seg, "none"), encoder_weights=None)
    device = resolve_device(args.device or seg.device)
    batch = seg.batch_size
    print(f"device: {device_name(device)}; U-Net++ {seg.encoder}, batch {batch}")
    print(f"{'setting':<13} {'size':>5} {'s/step':>8} {'steps/s':>8} {'images/s':>9}")
    for size in args.sizes:
        for setting in args.settings:
            precision, compile_mode, cuda_graphs = SETTINGS[setting]
            if (precision == "bf16" or cuda_graphs) and device.type != "cuda":
                print(f"{setting:<13} {size:>5} (CUDA-only: autocast and CUDA graphs need a GPU)")
                continue
            try:
                seconds = time_seg_step(dataclasses.replace(seg, compile=compile_mode), size, device, args.repeats,
                                        precision, cuda_graphs=cuda_graphs)
            except Exception as error:  # one setting failing (a compiler error, say) must not lose the others
                print(f"{setting:<13} {size:>5} failed: {type(error).__name__}: "
                      f"{str(error).splitlines()[0] if str(error) else ''}", flush=True)
                continue
            print(f"{setting:<13} {size:>5} {seconds:>8.3f} {1 / seconds:>8.2f} {batch / seconds:>9.1f}", flush=True)
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
