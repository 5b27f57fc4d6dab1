"""What an interrupted DVC stage can leave behind that stops every later DVC command, and its repair.

DVC records the outputs its running stages read and write in ``.dvc/tmp/rwlock`` and rewrites that file in place
(open for writing, which empties it, then ``json.dump``). A stage stopped between the two (Ctrl-C, the runner's SIGINT
to its stages, a killed worker) leaves it empty or cut short, and from then on every ``dvc status`` and ``dvc repro``
in the repository fails with "Unable to read RWLock-file '.dvc/tmp/rwlock'. JSON structure is corrupted" until
someone deletes it. Its entries only name the processes of that interrupted run, so the runner sets an unreadable
file aside before it starts (under DVC's own guard of the file, so never while a live DVC process is editing it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def _hardlink_lock(repo: Path) -> bool:
    """DVC's ``core.hardlink_lock`` for this repository (a shared filesystem may need it), as DVC reads it."""
    from dvc.config import Config

    return bool(Config(dvc_dir=str(repo / ".dvc"), validate=False)["core"].get("hardlink_lock", False))


def rwlock_readable(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def set_aside_broken_rwlock(repo: Path) -> Path | None:
    """Move an unreadable ``.dvc/tmp/rwlock`` to ``rwlock.broken-<unix time>`` beside it (kept for a look) and return
    that path; None when the file is absent or reads as JSON (DVC then handles it as always)."""
    from dvc.lock import make_lock
    from dvc.rwlock import RWLOCK_FILE, RWLOCK_LOCK  # DVC's own names for the file and its guard

    path = repo / ".dvc" / "tmp" / RWLOCK_FILE
    if not path.exists() or rwlock_readable(path):
        return None
    guard = make_lock(str(path.with_name(RWLOCK_LOCK)), tmp_dir=str(path.parent),
                      hardlink_lock=_hardlink_lock(repo), wait=True)
    with guard:  # a live DVC process holds this guard while it rewrites the file: wait for it, then look again
        if not path.exists() or rwlock_readable(path):
            return None
        aside = path.with_name(f"rwlock.broken-{int(time.time())}")
        path.replace(aside)
        return aside
