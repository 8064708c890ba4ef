"""Errors a user can fix, and the one way the commands report them.

Each such error's message says what is wrong, where (the config field, file or
store) and the fix. The commands print it as ``error: <message>`` and exit 1,
with no traceback unless ``HYDRA_FULL_ERROR=1`` asks for one.
"""

from __future__ import annotations

import os
import sys

FULL_ERROR_ENV = "HYDRA_FULL_ERROR"


class UserError(Exception):
    """A problem in the user's config, data, store or model reference; the message names it and the fix."""


class ConfigError(UserError, ValueError):
    """A config value is out of its type or range; the message names each field and the fix."""


class WriteError(UserError):
    """A file could not be written: a full disk, a read-only or forbidden folder."""


def wants_traceback() -> bool:
    """Whether the user asked for full tracebacks (``HYDRA_FULL_ERROR=1``)."""
    return os.environ.get(FULL_ERROR_ENV) == "1"


def report(exc: BaseException) -> int:
    """Print ``error: <message>`` on stderr and return the exit code 1."""
    print(f"error: {exc}", file=sys.stderr, flush=True)
    return 1
