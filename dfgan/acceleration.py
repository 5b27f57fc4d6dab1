"""Device settings shared by the GAN and U-Net++ trainers: determinism, compilation, memory layout, optimisers.

Every speed-up here is a CUDA-only branch (channels_last, fused Adam) or an explicit opt-in (``compile``), so a CPU
run computes exactly what it computed without them, and its exact resume is kept. On a GPU, runs repeat bit for bit
only with ``runtime.deterministic: true`` (cuDNN deterministic, deterministic algorithms, a fixed cuBLAS workspace);
``false`` lets cuDNN pick the fastest kernels (``benchmark``), which may differ between runs.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch
from torch import nn

from dfgan.params_schema import COMPILE_MODES

# cuBLAS repeats its results only with a fixed workspace; it reads this variable when CUDA creates its first handle.
CUBLAS_WORKSPACE_VARIABLE = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_WORKSPACE_SETTING = ":4096:8"


def configure_determinism(deterministic: bool) -> None:
    """Apply ``runtime.deterministic`` to this process (call it before the first CUDA work).

    True: cuDNN deterministic and no autotuning, ``torch.use_deterministic_algorithms(True)`` (an op without a
    deterministic kernel raises instead of silently varying) and the cuBLAS workspace setting. False: autotuned
    cuDNN kernels and no checks (the fast path on a GPU; a CPU computes the same either way).
    """
    deterministic = bool(deterministic)
    if deterministic:
        if os.environ.get(CUBLAS_WORKSPACE_VARIABLE) not in (":4096:8", ":16:8"):
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                warnings.warn(
                    f"runtime.deterministic: CUDA was initialised before {CUBLAS_WORKSPACE_VARIABLE} was set; "
                    f"set {CUBLAS_WORKSPACE_VARIABLE}={CUBLAS_WORKSPACE_SETTING} in the environment for exact repeats",
                    stacklevel=2,
                )
            os.environ[CUBLAS_WORKSPACE_VARIABLE] = CUBLAS_WORKSPACE_SETTING
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def runtime_deterministic(params: dict[str, Any]) -> bool:
    """``runtime.deterministic`` from the params, naming the key when it is absent."""
    runtime = params.get("runtime")
    if not isinstance(runtime, dict) or "deterministic" not in runtime:
        raise KeyError("params.yaml: runtime section lacks 'deterministic'")
    return bool(runtime["deterministic"])


# Measured by the benchmarks only, never named by a profile: CUDA graphs of the compiled networks.
BENCHMARK_COMPILE_MODES = ("reduce-overhead",)
# What each mode asks torch.compile for. max-autotune without CUDA graphs: replaying G's graph, then D's, overwrote
# G's output before the GAN step used it (benchmarks/RESULTS.md).
TORCH_COMPILE_MODE = {
    "default": None, "max-autotune": "max-autotune-no-cudagraphs", "reduce-overhead": "reduce-overhead",
}


def check_compile_mode(mode: str | bool) -> str:
    """The compile mode by name; a bare YAML ``off`` (read as False) means ``off``."""
    if mode is False:
        return "off"
    if mode not in COMPILE_MODES + BENCHMARK_COMPILE_MODES:
        raise ValueError(f"compile mode must be one of {COMPILE_MODES}, got '{mode}'")
    return mode


def compile_in_place(module: nn.Module, mode: str | bool) -> nn.Module:
    """``torch.compile`` the module's forward in place (``off``: untouched).

    In place (``nn.Module.compile``) rather than wrapped, so that ``state_dict`` keys, checkpoints and saved
    generators stay those of the plain module.
    """
    if check_compile_mode(mode) == "off":
        return module
    module.compile(mode=TORCH_COMPILE_MODE[mode])
    return module


def prefer_channels_last(module: nn.Module, device: torch.device) -> nn.Module:
    """NHWC weights on CUDA, where convolutions (tensor cores) run faster that way; the CPU layout is kept."""
    if device.type == "cuda":
        module.to(memory_format=torch.channels_last)
    return module


def channels_last_input(tensor: torch.Tensor) -> torch.Tensor:
    """A 4-D batch in NHWC on CUDA (to match :func:`prefer_channels_last`); untouched elsewhere."""
    if tensor.device.type == "cuda" and tensor.dim() == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def adam(parameters: Any, device: torch.device, **options: Any) -> torch.optim.Adam:
    """Adam with the fused CUDA kernel on a GPU (one launch for all parameters); the default loop on a CPU,
    whose arithmetic (and so every CPU result and resume) stays as it was."""
    if device.type == "cuda":
        options["fused"] = True
    return torch.optim.Adam(parameters, **options)
