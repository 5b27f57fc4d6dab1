"""Benchmark: one full GAN training step (D update + G update) per variant, size and speed setting, side by side.

    python -m benchmarks.bench_gan_step [--sizes 64 128 256] [--batch 16] [--settings fp32 bf16 compiled]

Networks and losses come from the params file (gan section); the image size, batch, precision and compile mode are
set per row. Settings: ``fp32``; ``bf16`` (autocast, CUDA only; the FID loss's Inception stays fp32);
``bf16-inception`` (bf16, and the Inception too: ``gan.inception_bf16``); ``compiled`` (torch.compile ``default`` of
G and D, bf16 on CUDA, fp32 on a CPU); ``cudagraphs`` (torch.compile ``reduce-overhead``: G and D replayed as CUDA
graphs, bf16; CUDA only; it fails: benchmarks/RESULTS.md); ``graphs`` (``gan.cuda_graphs``: the whole step - D and G
updates, FID loss included - captured by hand as one CUDA graph, bf16; CUDA only) and ``graphs-fp32`` (the same in
float32). The DF-GAN step includes the TF-Inception forward/backward at 299x299 and the FID term.
Prints seconds per step, steps/s, images/s and the DF-GAN / Pix2Pix step-time ratio of each row; a setting that
fails prints its error and the others go on.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.throughput import device_name, gan_settings_for, random_fid_term, time_gan_step
from dfgan.core.params_file import load_settings
from dfgan.core.runtime import resolve_device
from dfgan.core.speed import configure_determinism
from dfgan.gan.inception import load_inception

# setting -> (precision, compile mode, Inception in bf16, gan.cuda_graphs)
SETTINGS = {
    "fp32": ("fp32", "off", False, False),
    "bf16": ("bf16", "off", False, False),
    "bf16-inception": ("bf16", "off", True, False),
    "compiled": ("bf16", "default", False, False),
    "cudagraphs": ("bf16", "reduce-overhead", False, False),
    "graphs": ("bf16", "off", False, True),
    "graphs-fp32": ("fp32", "off", False, True),
}
CUDA_ONLY = {"bf16", "bf16-inception", "cudagraphs", "graphs", "graphs-fp32"}
LARGE = 256  # sizes from here on use --repeats-large (seconds per step on a CPU)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=["fp32", "bf16", "compiled"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repeats-large", type=int, default=1, help=f"repeats for sizes >= {LARGE}")
    parser.add_argument("--device", default=None, help="default: gan.device from the params")
    args = parser.parse_args()

    settings = load_settings(args.params)
    configure_determinism(settings.runtime.deterministic)
    device = resolve_device(args.device or settings.gan.device)
    fid_term = random_fid_term(load_inception(device, settings.fid.inception_path), device)
    print(f"device: {device_name(device)}; batch {args.batch}; ngf {settings.gan.ngf}")
    print(f"{'setting':<14} {'size':>5} {'variant':<8} {'s/step':>8} {'steps/s':>8} {'images/s':>9} {'dfgan/pix2pix':>14}")
    for size in args.sizes:
        repeats = args.repeats_large if size >= LARGE else args.repeats
        for setting in args.settings:
            precision, compile_mode, inception_bf16, cuda_graphs = SETTINGS[setting]
            if setting in CUDA_ONLY and device.type != "cuda":
                print(f"{setting:<14} {size:>5} (CUDA-only: autocast and CUDA graphs need a GPU)")
                continue
            if device.type != "cuda":
                precision = "fp32"
            run = gan_settings_for(settings, size, args.batch, precision, compile_mode, inception_bf16, cuda_graphs)
            seconds = {}
            for variant in ("pix2pix", "dfgan"):
                try:
                    seconds[variant] = time_gan_step(run, variant, device, fid_term, repeats)
                except Exception as error:  # one setting failing (a compiler error, say) must not lose the others
                    print(f"{setting:<14} {size:>5} {variant:<8} failed: {type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''}", flush=True)
                    continue
                ratio = f"{seconds['dfgan'] / seconds['pix2pix']:.2f}" if len(seconds) == 2 else ""
                s = seconds[variant]
                print(f"{setting:<14} {size:>5} {variant:<8} {s:>8.3f} {1 / s:>8.2f} {args.batch / s:>9.1f} {ratio:>14}",
                      flush=True)
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
