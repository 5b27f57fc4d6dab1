"""Run the DVC pipeline's independent stages concurrently on a Dask cluster, on the GPUs where they exist.

DVC stays in charge of caching, the lock file and experiments: the stage graph comes from ``dvc dag --dot``, what
needs running from ``dvc status --json``, and every stage runs as ``dvc --wait-for-lock repro -s <stage>`` (separate
``repro -s`` processes of independent stages may run at once; the flag makes each wait for the repository lock that
each holds briefly, instead of failing). This module only decides *when* and *where*:

    python -m dfgan.orchestrate.parallel                         # local: one stage per GPU at a time, or per core
    python -m dfgan.orchestrate.parallel --per-gpu 4             # up to 4 stages on each GPU at once
    python -m dfgan.orchestrate.parallel --workers 2 --gpus none report  # the ancestors of `report`, on 2 CPU workers
    python -m dfgan.orchestrate.parallel --address tcp://head:8786   # an existing Dask cluster (shared filesystem)
    python -m dfgan.orchestrate.parallel -S gan.lambda_l1=50 --name l1-50 --per-gpu 4  # = dvc exp run -n l1-50 -S ...

Each stage's output goes to ``logs/<stage>.log``; a failed stage stops its descendants only, the other branches
finish, and the exit status is non-zero with the failed stages and their logs named. Ctrl-C (or SIGTERM) interrupts
the running stages the way a Ctrl-C in ``dvc repro`` would, so no DVC lock is left held, and rerunning resumes (a
``.dvc/tmp/rwlock`` that a stopped stage left half-written is set aside first: :mod:`dfgan.orchestrate.recovery`). A
run whose Dask workers are lost (the scheduler drops a worker that misses its heartbeats: a runner paused past
``distributed.scheduler.worker-ttl``, a suspended laptop, a dead cluster worker) stops the same way and exits with
status 75, in one line naming the finished stages and the command that resumes.
Stages with the longest chain of work behind them start first; the chain is counted in seconds once
``logs/durations.json`` holds the stages' earlier run times (the runner keeps it up to date), in stages before.

Local GPUs are handed out by the runner itself (:func:`dfgan.orchestrate.devices.place_stage`): a stage starts on
the least busy GPU that runs fewer than ``--per-gpu`` stages. Every stage gets an equal share of the CPU cores in
OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS (:func:`dfgan.orchestrate.devices.thread_share`), unless
OMP_NUM_THREADS is already set, as torchrun does. ``-S`` and ``--name`` give the runner ``dvc exp run``'s vocabulary
(:mod:`dfgan.orchestrate.experiments`): the params change as ``dvc exp run -S`` changes them (DVC's own parser), and
the finished workspace is saved with ``dvc exp save -n NAME``.

This module is the command line; the stage graph and its order are :mod:`dfgan.orchestrate.dag`, the scheduling
loop :mod:`dfgan.orchestrate.stage_scheduler`, and what runs on a worker :mod:`dfgan.orchestrate.stage_worker`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dfgan.core.errors import InputError
from dfgan.orchestrate.dag import DvcCommandError, changed_stages, load_durations, read_stage_graph, stages_to_run
from dfgan.orchestrate.devices import (
    Placement, cluster_thread_shares, detect_gpus, local_slots, thread_share, usable_cpus,
)
from dfgan.orchestrate.experiments import check_experiment_name, restore_files, save_experiment, set_params
from dfgan.orchestrate.recovery import set_aside_broken_rwlock
from dfgan.orchestrate.stage_scheduler import report_summary, run_graph
from dfgan.orchestrate.stage_worker import EXIT_INTERRUPTED, run_stage


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dfgan.orchestrate.parallel",
        description="Run the pipeline's independent DVC stages concurrently on a Dask cluster "
                    "(each as `dvc repro -s <stage>`); the same results as `dvc repro`, sooner. With -S and --name "
                    "it is `dvc exp run -S ... -n NAME` spread over the GPUs.",
    )
    parser.add_argument("targets", nargs="*", help="stages to bring up to date, with their ancestors (default: all)")
    parser.add_argument("-S", "--set-param", dest="set_params", action="append", default=[], metavar="KEY=VALUE",
                        help="change a param first, as `dvc exp run -S` does (DVC's parser: gan.lambda_l1=50, "
                             "'gan.seeds=[0,1]', +new.key=1 to add, other.yaml:key=value for another params file); "
                             "repeatable; params.yaml is checked against the schema before anything runs")
    parser.add_argument("-n", "--name", default=None,
                        help="once every stage succeeded, save the workspace as this experiment (`dvc exp save -n`), "
                             "for `dvc exp show` and `dvc metrics diff`; without it the workspace is left changed, "
                             "as after `dvc repro`")
    parser.add_argument("--workers", type=int, default=None,
                        help="local workers, one stage each at a time (default: --per-gpu x GPUs, else one per CPU "
                             "core)")
    parser.add_argument("--gpus", default="auto",
                        help="local GPUs: auto (CUDA_VISIBLE_DEVICES or nvidia-smi), none (stages see no GPU), "
                             "or ids such as 0,1,2,3; each stage sees one")
    parser.add_argument("--per-gpu", type=int, default=None, metavar="K",
                        help="stages at once on each local GPU (default 1); each starts on the least busy GPU. "
                             "K > 1 suits small, launch-bound stages (see CUDA MPS in the README). On a cluster, "
                             "start each GPU's worker with --nthreads K --resources GPU=K instead")
    parser.add_argument("--threads-per-stage", type=int, default=None, metavar="N",
                        help="CPU threads of each stage (OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS); "
                             "default: the cores divided by the stages that run at once, unless OMP_NUM_THREADS is "
                             "already set")
    parser.add_argument("--address", default=None,
                        help="scheduler of an existing Dask cluster (tcp://host:8786) instead of local workers; "
                             "the repository and the DVC cache must be on a filesystem all workers share")
    parser.add_argument("--scheduler-file", type=Path, default=None,
                        help="the JSON file `dask scheduler --scheduler-file` wrote, instead of --address")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the DVC repository (default: current folder)")
    parser.add_argument("--log-dir", type=Path, default=Path("logs"), help="stage logs, relative to --repo")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the stages that would run (with the -S changes), in order, and exit; "
                             "the params files are left as they were")
    args = parser.parse_args(argv)
    if args.address and args.scheduler_file:
        parser.error("give --address or --scheduler-file, not both")
    for option in ("workers", "per_gpu", "threads_per_stage"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    if args.per_gpu is not None and (args.address or args.scheduler_file):
        parser.error(f"--per-gpu applies to local GPUs; on a cluster start each GPU's worker with "
                     f"--nthreads {args.per_gpu} --resources GPU={args.per_gpu}")
    return args


def local_placement(args: argparse.Namespace, gpus: list[str] | None,
                    cpus: int | None = None) -> tuple[int, Placement]:
    """The local workers and where their stages go: ``--per-gpu`` stages on each GPU, else (no GPUs) ``--workers``
    or one per core on the CPU; each stage with its share of the cores."""
    cpus = usable_cpus() if cpus is None else cpus
    if gpus:
        per_gpu, n_workers = local_slots(len(gpus), args.per_gpu, args.workers)
    else:
        per_gpu, n_workers = 1, args.workers or cpus
    threads = args.threads_per_stage or thread_share(cpus, n_workers)
    return n_workers, Placement(gpus=tuple(gpus or ()), per_gpu=per_gpu, hide_gpus=gpus == [], threads=threads,
                                force_threads=args.threads_per_stage is not None, max_running=n_workers)


def start_client(args: argparse.Namespace, n_workers: int) -> Any:
    """A client of the given cluster, or of a local one whose workers each run one stage at a time."""
    from distributed import Client, LocalCluster

    if args.address or args.scheduler_file:
        # Workers of a cluster started elsewhere may not have this checkout on their path: send the code along.
        import cloudpickle

        if run_stage.__module__ != "__main__":  # __main__ is sent by value anyway
            cloudpickle.register_pickle_by_value(sys.modules[run_stage.__module__])
        if args.scheduler_file:
            return Client(scheduler_file=str(args.scheduler_file))
        return Client(args.address)
    # Threads, not processes: each task only waits on its `dvc` subprocess, and the runner stays a single process.
    # The runner hands out the GPUs itself (run_graph), so the workers declare no resources.
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=False, dashboard_address=None)
    return Client(cluster)


def cluster_placement(client: Any, threads_per_stage: int | None) -> Placement:
    """Each cluster worker's thread share, from its host's cores and the stages its workers run at once."""
    workers = client.scheduler_info()["workers"]
    if threads_per_stage is not None:
        return Placement(threads=threads_per_stage, force_threads=True)
    return Placement(worker_threads=cluster_thread_shares(workers, client.run(usable_cpus)))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    repo = args.repo.resolve()
    log_dir = args.log_dir if args.log_dir.is_absolute() else repo / args.log_dir
    originals: dict[Path, bytes] = {}
    try:
        if args.name is not None:
            check_experiment_name(repo, args.name)
        if aside := set_aside_broken_rwlock(repo):
            print(f"DVC's .dvc/tmp/rwlock was unreadable (a stage was stopped while DVC rewrote it): set aside as "
                  f"{aside.relative_to(repo)}", flush=True)
        originals = set_params(repo, args.set_params) if args.set_params else {}
        graph = read_stage_graph(repo, args.targets)
        plan = stages_to_run(graph, changed_stages(repo))
        load_durations(log_dir)  # a broken file is reported now, not after the run
    except InputError as error:
        print("\n".join(error.lines()), file=sys.stderr)
        return 2
    except (DvcCommandError, ValueError) as error:
        restore_files(originals)
        print(error, file=sys.stderr)
        return 2
    changes = "".join(f" -S {override}" for override in args.set_params)
    if args.dry_run:
        restore_files(originals)
        print("\n".join(plan.topological_order()) if plan.order else
              f"nothing to do: all {len(graph.order)} stage(s) are up to date{' with' + changes if changes else ''}")
        return 0
    if changes:
        print(f"params changed:{changes}", flush=True)
    if not plan.order:
        print(f"nothing to do: all {len(graph.order)} stage(s) are up to date")
        return save_named(repo, args) if args.name else 0
    external = bool(args.address or args.scheduler_file)
    try:
        gpus = None if external else detect_gpus(args.gpus)
        n_workers, placement = (0, Placement()) if external else local_placement(args, gpus)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if args.per_gpu is not None and not placement.gpus:
        print("no GPUs: --per-gpu has no effect (--workers sets the stages at once on the CPU)", flush=True)
    try:
        client = start_client(args, n_workers)
        if external:
            placement = cluster_placement(client, args.threads_per_stage)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if external:
        where = f"the cluster at {args.address or args.scheduler_file}"
        shares = sorted(set(placement.worker_threads.values())) or [placement.threads]
        threads = f"{'/'.join(map(str, shares))} CPU thread(s) per stage"
    else:
        where = f"{n_workers} local worker(s), " + (
            f"GPUs {','.join(gpus or ())}, up to {placement.per_gpu} stage(s) each" if placement.gpus else "CPU")
        kept = "OMP_NUM_THREADS" in os.environ and not placement.force_threads
        threads = (f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} as set" if kept
                   else f"{placement.threads} CPU thread(s) per stage")
    print(f"{len(plan.order)} of {len(graph.order)} stage(s) to run on {where}; {threads}; logs in {args.log_dir}/",
          flush=True)
    try:
        summary = run_graph(client, plan, repo, log_dir, placement, say=lambda text: print(text, flush=True))
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()
    command = shlex.join(["python", "-m", "dfgan.orchestrate.parallel", *argv])
    report_summary(summary, say=lambda text: print(text, file=sys.stderr if summary.exit_code else sys.stdout),
                   command=command)
    if summary.exit_code:
        if args.name:
            print(f"experiment '{args.name}' not saved: run the same command again to finish it", file=sys.stderr)
        return summary.exit_code
    return save_named(repo, args) if args.name else 0


def save_named(repo: Path, args: argparse.Namespace) -> int:
    saved = save_experiment(repo, args.name, args.targets)
    if saved.returncode != 0:
        print(f"`dvc exp save -n {args.name}` failed (exit {saved.returncode}):\n{saved.stderr or saved.stdout}",
              file=sys.stderr)
        return 1
    if saved.stderr.strip():  # DVC's warnings, such as untracked files left out of the experiment
        print(saved.stderr.strip(), file=sys.stderr)
    print(f"saved experiment '{args.name}': dvc exp show; dvc metrics diff HEAD {args.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
