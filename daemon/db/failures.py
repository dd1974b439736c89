"""Telling a statement the database refused for its data (one row's fault) from a database that
is down or busy (nobody's row: retry later)."""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

# SQLSTATE classes that blame the database, not the statement's data: connection (08),
# transaction rollback such as a deadlock (40), resources (53), operator intervention (57),
# system (58), and lock_not_available (55P03).
_NOT_THE_DATA: Final = ("08", "40", "53", "57", "58", "55P03")


def blames_database(err: BaseException) -> bool:
    """Whether ``err`` says the database failed (down, busy, deadlocked), not the data sent."""
    if isinstance(err, sa.exc.DBAPIError):
        if err.connection_invalidated or isinstance(err, sa.exc.OperationalError):
            return True  # SQLite's "database is locked", I/O errors; a dropped connection
        state = getattr(err.orig, "sqlstate", None)
        return isinstance(state, str) and state.startswith(_NOT_THE_DATA)
    return isinstance(err, OSError | TimeoutError | sa.exc.TimeoutError | sa.exc.DisconnectionError)


def error_line(err: BaseException) -> str:
    """``err`` as one line; a database error as the driver's own, without SQL and parameters
    (which may hold any value of the row)."""
    if isinstance(err, sa.exc.StatementError) and err.orig is not None:
        err = err.orig
        if isinstance(err.__cause__, Exception):  # the driver's own error names the failure
            err = err.__cause__
    lines = f"{type(err).__name__}: {err}".strip().splitlines()
    return lines[0] if lines else type(err).__name__
