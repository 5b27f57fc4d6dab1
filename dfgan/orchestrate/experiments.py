"""``dvc exp run``'s vocabulary for the runner: ``-S`` overrides applied with DVC's own parser (and checked against the
params schema) and ``--name``, the finished workspace saved with ``dvc exp save -n NAME``."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from dfgan.core.errors import InputError, ParamsError
from dfgan.orchestrate.dag import dvc_command


# --- experiments: `dvc exp run`'s -S and --name --------------------------------------------------------------

DEFAULT_PARAMS_FILE = "params.yaml"


def _first_line(error: BaseException | None) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0] if text else "invalid override"


def _apply_overrides(path: Path, overrides: Sequence[str], shown: str) -> None:
    """DVC's own ``-S`` code on ``path``; a rejected override becomes an InputError naming it. A key the file lacks
    is retried as ``++key=value`` so that the schema (for params.yaml) can say what is wrong with it."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import apply_overrides

    original = path.read_bytes()
    try:
        apply_overrides(path, list(overrides))
        return
    except InvalidArgumentError as error:
        culprit, cause = ",".join(overrides), error.__cause__
    for override in overrides:  # which one: DVC's message names the parser's complaint, not the -S it came from
        path.write_bytes(original)
        try:
            apply_overrides(path, [override])
        except InvalidArgumentError as error:
            culprit, cause = override, error.__cause__
            break
    path.write_bytes(original)
    if shown == DEFAULT_PARAMS_FILE and not culprit.startswith(("+", "~")) and "=" in culprit:
        try:
            apply_overrides(path, [f"++{culprit}"])
            problems = _schema_problems(path, shown)
        except InvalidArgumentError:
            problems = []
        path.write_bytes(original)
        if problems:
            raise ParamsError([f"-S {culprit}: {problem}" for problem in problems])
    typed = culprit if shown == DEFAULT_PARAMS_FILE else f"{shown}:{culprit}"  # as it was given
    raise InputError(f"-S {typed}: {shown}: {_first_line(cause)}")


def _schema_problems(path: Path, shown: str) -> list[str]:
    from dfgan.core.params_file import load_params
    from dfgan.core.validation import validate_params

    return validate_params(load_params(path, validate=False), shown)


def _refuse_sweeps(overrides: Sequence[str], shown: str) -> None:
    """A sweep (``key=1,2`` or ``key=range(...)``) is several experiments: like ``dvc exp run``, refuse it here."""
    from hydra.errors import OverrideParseException

    from dvc.utils.hydra import to_hydra_overrides

    for override in overrides:
        try:
            sweep = any(parsed.is_sweep_override() for parsed in to_hydra_overrides([override]))
        except OverrideParseException:
            continue  # reported with its parser message when applied
        if sweep:
            typed = override if shown == DEFAULT_PARAMS_FILE else f"{shown}:{override}"
            raise InputError(f"-S {typed}: a sweep is one experiment per value: run the runner once per value, or "
                             "queue them (`dvc exp run --queue -S ...`, then python -m dfgan.orchestrate.exp_queue)")


def _blamed(problem: str, overrides: Sequence[str]) -> str:
    """The ``-S`` that a schema problem (``params.yaml: key: message``) is about: the last override of that key, of
    a section holding it or of a key inside it; all of them if none is."""
    key = problem.split(": ")[1] if problem.count(": ") >= 2 else ""
    for override in reversed(overrides):
        name = override.partition("=")[0].lstrip("+~")
        if key and (key == name or key.startswith((name + ".", name + "[")) or name.startswith(key + ".")):
            return f"-S {override}"
    return " ".join(f"-S {override}" for override in overrides)


def set_params(repo: Path, overrides: Sequence[str]) -> dict[Path, bytes]:
    """Apply ``-S`` overrides to the params files as ``dvc exp run -S`` does and return the files' previous content.

    DVC's own code does it (``dvc.utils.cli_parse.to_path_overrides`` and ``dvc.utils.hydra.apply_overrides``):
    dotted keys, YAML-like values in Hydra's override grammar (``gan.lambda_l1=50``, ``'gan.seeds=[0,1]'``,
    ``+new.key=1`` adds, ``~key`` deletes), ``other.yaml:key=value`` for another params file; several overrides of
    one file apply together. params.yaml is then checked with :func:`dfgan.core.validation.validate_params`. Every file
    is changed in a scratch copy first, so nothing is written unless every override applies and the schema passes.
    """
    from dvc.utils.cli_parse import to_path_overrides

    originals: dict[Path, bytes] = {}
    staged: dict[Path, Path] = {}
    with tempfile.TemporaryDirectory(prefix="dfgan-set-params-") as scratch:
        for number, (name, file_overrides) in enumerate(to_path_overrides(overrides).items()):
            path = repo / name
            if not path.is_file():
                raise InputError(f"-S {name}:{file_overrides[0]}: {name}: params file not found in {repo}")
            _refuse_sweeps(file_overrides, name)
            copy = Path(scratch) / f"{number}{path.suffix}"
            shutil.copyfile(path, copy)
            _apply_overrides(copy, file_overrides, name)
            if name == DEFAULT_PARAMS_FILE and (problems := _schema_problems(copy, name)):
                raise ParamsError([f"{_blamed(problem, file_overrides)}: {problem}" for problem in problems])
            originals[path], staged[path] = path.read_bytes(), copy
        for path, copy in staged.items():
            shutil.copyfile(copy, path)
    return originals


def restore_files(originals: Mapping[Path, bytes]) -> None:
    for path, content in originals.items():
        path.write_bytes(content)


def check_experiment_name(repo: Path, name: str) -> None:
    """Refuse, before any stage runs, a name that ``dvc exp save -n`` would refuse at the end: not a valid git ref
    name, or already an experiment of this commit (DVC's own checks)."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.repo import Repo
    from dvc.repo.experiments.refs import ExpRefInfo
    from dvc.repo.experiments.utils import check_ref_format

    with Repo(str(repo)) as dvc_repo:
        ref = ExpRefInfo(dvc_repo.scm.get_rev(), name)
        try:
            check_ref_format(dvc_repo.scm, ref)
        except InvalidArgumentError as error:
            raise InputError(f"--name {name}: {error}") from None
        if dvc_repo.scm.get_ref(str(ref)) is not None:
            raise InputError(f"--name {name}: this commit already has an experiment of that name "
                                 f"(`dvc exp remove {name}`, or pick another name)")


def untracked_outputs(repo: Path) -> list[str]:
    """Files that stages wrote (outputs in dvc.lock) that git neither tracks nor ignores: the outputs with
    ``cache: false`` that are new since the last commit, which ``dvc exp save`` would otherwise leave out."""
    lock = repo / "dvc.lock"
    if not lock.exists():
        return []
    import yaml

    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    outs = {str(out["path"]).rstrip("/") for stage in stages.values() for out in stage.get("outs", [])}
    listed = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=repo,
                            capture_output=True, check=True).stdout.decode()
    return sorted(path for path in listed.split("\0")
                  if path and any(path == out or path.startswith(out + "/") for out in outs))


def save_experiment(repo: Path, name: str, targets: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """``dvc exp save -n NAME``, with ``-I`` for every new untracked output and the runner's targets (so that DVC
    commits only the stages that ran)."""
    include = [arg for path in untracked_outputs(repo) for arg in ("-I", path)]
    return subprocess.run(dvc_command("exp", "save", "-n", name, *include, *targets), cwd=repo, text=True,
                          capture_output=True)


