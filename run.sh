#!/usr/bin/env bash
# The project's two commands, in a virtual environment of its own (.venv), on any Python 3.11+:
#
#   bash run.sh repro [dvc repro options]   run the pipeline (default data: the embedded phantom)
#   bash run.sh test  [pytest options]      run the tests
#
# Each creates .venv when it is missing and installs requirements.txt into it only when that file changed since the
# last install (its SHA-256 is kept in .venv/requirements.sha256), so a second run starts at once.
# The base Python is $PYTHON when set, else python3 on PATH.
set -euo pipefail
cd "$(dirname "$0")"
export DVC_NO_ANALYTICS=1

VENV=.venv
STAMP=$VENV/requirements.sha256

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

requirements_hash() {
    "$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' \
        requirements.txt
}

ensure_environment() {
    # A missing, half-made (no pip) or broken .venv (its base Python removed) is made again from scratch.
    if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -f "$STAMP"
        make_venv
    fi
    local wanted
    wanted=$(requirements_hash)
    if [[ -f $STAMP && $(<"$STAMP") == "$wanted" ]]; then
        say "using $VENV ($("$VENV/bin/python" -V)); requirements.txt unchanged since its last install"
        return
    fi
    say "installing requirements.txt into $VENV (the first time this fetches PyTorch, several GB, and takes minutes)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -r requirements.txt
    echo "$wanted" >"$STAMP"
    say "installed; later runs skip this step until requirements.txt changes"
}

command=${1:-}
[[ $command == -h || $command == --help ]] && usage 0
[[ $command == repro || $command == test ]] || usage
shift

ensure_environment
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
