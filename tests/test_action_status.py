"""The action lifecycle's transition table: illegal changes raise, every legal one is reachable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daemon.action_status import (
    ACCEPTED,
    MAX_ATTEMPTS,
    RECORDED_AS,
    TRANSITIONS,
    IllegalTransitionError,
    completion,
    require,
    sources,
)
from daemon.db.models import ActionStatus
from domain.writes import PushResult, PushStatus

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LEGAL = [(old, new) for old, targets in TRANSITIONS.items() for new in sorted(targets)]


def reachable() -> set[ActionStatus]:
    """Every status a row can get to from the statuses it is inserted with (and legacy staged)."""
    seen = set(RECORDED_AS) | {ActionStatus.STAGED}
    frontier = list(seen)
    while frontier:
        for new in TRANSITIONS.get(frontier.pop(), frozenset()):
            if new not in seen:
                seen.add(new)
                frontier.append(new)
    return seen


@pytest.mark.parametrize(("old", "new"), LEGAL, ids=[f"{o}->{n}" for o, n in LEGAL])
def test_every_legal_transition_is_allowed_and_reachable(
    old: ActionStatus, new: ActionStatus
) -> None:
    require(old, new)
    assert old in reachable()
    assert old.value in sources(new)


def test_every_status_is_reachable() -> None:
    assert reachable() == set(ActionStatus)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (ActionStatus.CONFIRMED, ActionStatus.PLANNED),
        (ActionStatus.FAILED, ActionStatus.SENT),
        (ActionStatus.SUPERSEDED, ActionStatus.SENT),
        (ActionStatus.BLOCKED, ActionStatus.PLANNED),
        (ActionStatus.HELD, ActionStatus.SENT),
        (ActionStatus.PLANNED, ActionStatus.CONFIRMED),
        (ActionStatus.PLANNED, ActionStatus.PLANNED),
        (ActionStatus.SENT, ActionStatus.BLOCKED),
        (ActionStatus.STAGED, ActionStatus.SENT),
    ],
)
def test_an_illegal_transition_raises(old: ActionStatus, new: ActionStatus) -> None:
    with pytest.raises(IllegalTransitionError):
        require(old, new)


def test_completed_and_dead_statuses_are_final() -> None:
    for final in (
        ActionStatus.CONFIRMED,
        ActionStatus.FAILED,
        ActionStatus.SUPERSEDED,
        ActionStatus.BLOCKED,
        ActionStatus.HELD,
    ):
        assert final not in TRANSITIONS


@pytest.mark.parametrize(
    ("pushed", "attempts", "status", "code", "completed", "counted"),
    [
        (PushStatus.CONFIRMED, 0, ActionStatus.CONFIRMED, None, True, 1),
        (PushStatus.ACCEPTED, 0, ActionStatus.SENT, ACCEPTED, False, 1),
        (PushStatus.REJECTED, 0, ActionStatus.FAILED, None, True, 1),
        (PushStatus.DEFERRED, 2, ActionStatus.PLANNED, None, False, 2),
        (PushStatus.RETRY, 0, ActionStatus.PLANNED, None, False, 1),
        (PushStatus.RETRY, MAX_ATTEMPTS - 1, ActionStatus.FAILED, None, True, MAX_ATTEMPTS),
    ],
)
def test_a_push_result_completes_a_sent_row_legally(
    pushed: PushStatus,
    attempts: int,
    status: ActionStatus,
    code: str | None,
    completed: bool,
    counted: int,
) -> None:
    done = completion(7, attempts, PushResult("k", pushed), NOW)
    require(ActionStatus.SENT, done.status)
    assert (done.status, done.response_code, done.completed_at is not None, done.attempts) == (
        status,
        code,
        completed,
        counted,
    )
    assert done.applied is (pushed in (PushStatus.CONFIRMED, PushStatus.ACCEPTED))
