"""Expected errors (bad params, bad data) and how the stage entry points report them.

An :class:`InputError` is a problem the user can fix: its message names the file, row or key and says what to do.
:func:`run_stage` prints such a message as one line on stderr (one line per problem for a :class:`ParamsError`)
and exits with :data:`INPUT_ERROR_EXIT`, without a traceback unless ``DFGAN_TRACEBACK=1``. Any other exception is a
bug or an environment fault and keeps its full traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

INPUT_ERROR_EXIT = 2
TRACEBACK_ENV = "DFGAN_TRACEBACK"


class InputError(ValueError):
    """Bad input that the user can fix; the message names the culprit (file, CSV row, params key) and the fix."""

    def lines(self) -> list[str]:
        return [str(self)]


class ParamsError(InputError):
    """One or more problems in a params file, each a self-contained line naming the file and the key."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))

    def lines(self) -> list[str]:
        return list(self.problems)


def traceback_requested() -> bool:
    return os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


def run_stage(main: Callable[[], object]) -> None:
    """Run a stage's ``main``; an :class:`InputError` becomes ``error: <message>`` lines and exit status 2."""
    try:
        main()
    except InputError as error:
        if traceback_requested():
            raise
        for line in error.lines():
            print(f"error: {line}", file=sys.stderr)
        sys.exit(INPUT_ERROR_EXIT)
