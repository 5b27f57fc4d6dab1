"""Speed options shared by the GAN and U-Net++ trainers, and the determinism they trade against: deterministic
kernels, torch.compile, channels_last, fused Adam and whole-step CUDA graphs.

Every speed-up here is a CUDA-only branch (channels_last, fused Adam) or an explicit opt-in (``compile``), so a CPU
run computes exactly what it computed without them, and its exact resume is kept. On a GPU, runs repeat bit for bit
only with ``runtime.deterministic: true`` (cuDNN deterministic, deterministic algorithms, a fixed cuBLAS workspace);
``false`` lets cuDNN pick the fastest kernels (``benchmark``), which may differ between runs.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import torch
from torch import nn

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


# What each mode asks torch.compile for. max-autotune without CUDA graphs: replaying G's graph, then D's, overwrote
# G's output before the GAN step used it (benchmarks/RESULTS.md). reduce-overhead (CUDA graphs of the compiled
# networks) is measured by the benchmarks only, never named by a profile (core.rules.COMPILE_MODES).
TORCH_COMPILE_MODE = {
    "default": None, "max-autotune": "max-autotune-no-cudagraphs", "reduce-overhead": "reduce-overhead",
}


def compile_in_place(module: nn.Module, mode: str) -> nn.Module:
    """``torch.compile`` the module's forward in place (``off``: untouched; otherwise a key of
    :data:`TORCH_COMPILE_MODE`).

    In place (``nn.Module.compile``) rather than wrapped, so that ``state_dict`` keys, checkpoints and saved
    generators stay those of the plain module.
    """
    if mode == "off":
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


def adam(parameters: Any, device: torch.device, capturable: bool = False, **options: Any) -> torch.optim.Adam:
    """Adam with the fused CUDA kernel on a GPU (one launch for all parameters); the default loop on a CPU,
    whose arithmetic (and so every CPU result and resume) stays as it was.

    ``capturable`` (CUDA only, for :class:`CapturedStep`): ``Adam(capturable=True)`` with the learning rate as a
    device tensor, so that a CUDA graph replays the step with the current rate (an LR scheduler fills that tensor in
    place; a float would be baked into the graph)."""
    if device.type == "cuda" and capturable:
        options["capturable"] = True
        options["lr"] = torch.tensor(float(options.get("lr", 1e-3)), dtype=torch.float32, device=device)
    elif device.type == "cuda":
        options["fused"] = True
    return torch.optim.Adam(parameters, **options)


def learning_rate(optimizer: torch.optim.Optimizer) -> float:
    """The first group's learning rate as a float (a device tensor under ``capturable``: read once, a sync)."""
    return float(optimizer.param_groups[0]["lr"])


def restore_capturable_lr(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """After ``load_state_dict`` (which puts the saved values, read onto the CPU, into the param groups): the
    learning rate back into a device tensor for a capturable optimizer. Call before any graph is captured."""
    for group in optimizer.param_groups:
        if group.get("capturable"):
            group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)


# ----------------------------------------------------------------------------------------------------------------------
# Whole-step CUDA graphs

_NOTICES: set[str] = set()


def notice_once(message: str) -> None:
    """Print ``message`` the first time this process asks (an option ignored, a capture that fell back)."""
    if message not in _NOTICES:
        _NOTICES.add(message)
        print(message, flush=True)


def cuda_graphs_wanted(requested: bool, device: torch.device, key: str, blockers: dict[str, bool] | None = None) -> bool:
    """Whether a run replays its training step as a CUDA graph: ``key`` (e.g. ``gan.cuda_graphs``) asked for it,
    the device is CUDA and nothing in ``blockers`` (reason -> blocks) is true. Otherwise one printed line says why
    the option is ignored (nothing is printed when it was not asked for)."""
    if not requested:
        return False
    if device.type != "cuda":
        reasons = [f"CUDA graphs need a CUDA device (running on {device.type})"]
    else:
        reasons = [reason for reason, blocks in (blockers or {}).items() if blocks]
    if reasons:
        notice_once(f"{key}: ignored, {'; '.join(reasons)}")
        return False
    return True


class CapturedStep:
    """A training step replayed as ONE CUDA graph (``torch.cuda.graph``): one launch instead of hundreds.

    ``step(*inputs)`` runs a whole optimisation step (forward, losses, backward, optimizer step) on tensors already
    on the GPU and returns its outputs (tensors, or a tuple/dict of them). The first ``warmup`` calls run it eagerly
    on a side stream - real training steps, which also settle cuDNN's autotuning, the optimizer state and cuBLAS
    workspaces; the next call captures it on static copies of its inputs and every call from then on copies its
    inputs into those buffers and replays the graph. Requirements, as for any CUDA graph: static shapes (a call
    whose inputs differ in shape or dtype from the captured ones - a short last batch - runs eagerly), no host
    synchronisation and no CPU tensors inside ``step``, capturable optimizers (:func:`adam` ``capturable=True``),
    autocast with ``cache_enabled=False``, and gradients set to None at the start of each update (``zero_grad``), so
    that the graph owns its gradient buffers. Random numbers (dropout) come from the default CUDA generator, which
    graphs advance as eager code does.

    The outputs of a replay are the graph's own buffers, overwritten by the next replay: copy what must outlive it.
    If the capture fails (an operation that cannot be captured), one line is printed and the step stays eager.
    Whether the graph really ran is counted - ``replays`` (the capture's own call included), ``eager_calls`` (calls
    after the warm-up that ran eagerly: a failed capture, or inputs of another shape) and ``failure`` (the capture's
    error) - and :meth:`problem` says in words why a step did not replay every call after its warm-up.
    """

    def __init__(self, step: Callable[..., Any], name: str, warmup: int = 3) -> None:
        self.step, self.name, self.warmup = step, name, int(warmup)
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_inputs: tuple[torch.Tensor, ...] = ()
        self.static_outputs: Any = None
        self.failed = False
        self.failure: str | None = None  # the capture's error, when it failed
        self.replays = 0  # graph replays, the capture's own call included
        self.eager_calls = 0  # calls after the warm-up that ran eagerly (a failed capture, inputs of another shape)

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def _matches(self, inputs: tuple[torch.Tensor, ...]) -> bool:
        return len(inputs) == len(self.static_inputs) and all(
            a.shape == b.shape and a.dtype == b.dtype for a, b in zip(inputs, self.static_inputs)
        )

    def problem(self) -> str | None:
        """Why this step did not replay its graph on every call after the warm-up (None: it did, at least once)."""
        if self.failure is not None:
            return f"the capture failed and {self.eager_calls} call(s) ran eagerly ({self.failure})"
        if self.graph is None:
            return f"never captured ({self.calls} of {self.warmup} warm-up calls made)"
        if self.eager_calls:
            return f"{self.eager_calls} call(s) after the capture ran eagerly (inputs of another shape or dtype)"
        return None

    def __call__(self, *inputs: torch.Tensor) -> Any:
        if self.failed or (self.graph is not None and not self._matches(inputs)):
            self.eager_calls += 1
            return self.step(*inputs)
        if self.graph is None:
            if self.calls < self.warmup:
                self.calls += 1
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    outputs = self.step(*inputs)
                torch.cuda.current_stream().wait_stream(side)
                return outputs
            if not self._capture(inputs):
                self.eager_calls += 1
                return self.step(*inputs)
            return self.static_outputs  # the capture's inputs are this call's: replayed once in _capture
        for static, tensor in zip(self.static_inputs, inputs):
            static.copy_(tensor, non_blocking=True)
        self.graph.replay()
        self.replays += 1
        return self.static_outputs

    def _capture(self, inputs: tuple[torch.Tensor, ...]) -> bool:
        self.static_inputs = tuple(tensor.clone() for tensor in inputs)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                outputs = self.step(*self.static_inputs)
        except Exception as error:  # e.g. an op that synchronises or copies from host memory: stay eager
            first_line = str(error).splitlines()[0] if str(error) else ""
            self.failure = f"{type(error).__name__}: {first_line}"
            notice_once(f"[{self.name}] CUDA graph capture failed ({self.failure}): the step runs eagerly")
            self.failed, self.static_inputs = True, ()
            torch.cuda.synchronize()
            return False
        self.graph, self.static_outputs = graph, outputs
        graph.replay()  # capturing records the work without doing it: this call's step happens here
        self.replays += 1
        return True
