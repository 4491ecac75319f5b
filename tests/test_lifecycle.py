"""The status machine, checked exhaustively against a table written out by hand."""

from __future__ import annotations

import itertools

import pytest

from strategy_runner.lifecycle import (
    ClaimKind,
    Decision,
    Status,
    claim_kind,
    decide,
    finish_decision,
    is_terminal,
    sources,
)

P, R, C, F, X = Status.PENDING, Status.RUNNING, Status.COMPLETED, Status.FAILED, Status.CANCELLED
A, N, NO = Decision.APPLY, Decision.NOOP, Decision.REFUSE

# EXPECTED[current][target] without the retryable flag; None = no item yet.
EXPECTED = {
    None: {P: A, R: A, C: NO, F: A, X: A},
    P: {P: N, R: A, C: NO, F: A, X: A},
    R: {P: NO, R: N, C: A, F: A, X: A},
    C: {P: NO, R: NO, C: N, F: NO, X: NO},
    F: {P: NO, R: NO, C: NO, F: N, X: NO},
    X: {P: NO, R: NO, C: NO, F: NO, X: N},
}


@pytest.mark.parametrize(
    "current,target,retryable",
    list(itertools.product([None, *Status], list(Status), [False, True])),
)
def test_every_transition(current, target, retryable):
    expected = EXPECTED[current][target]
    if current == F and target == R and retryable:
        expected = A  # a retryable failure may be taken by a new attempt
    assert decide(current, target, retryable=retryable) == expected


def test_terminal_states():
    assert {s for s in Status if is_terminal(s)} == {C, F, X}
    assert not is_terminal(None)


def test_sources_match_the_table():
    for target in Status:
        assert sources(target) == {cur for cur, row in EXPECTED.items() if row[target] == A}


STALE = "2026-01-01T00:10:00.000000Z"


@pytest.mark.parametrize(
    "item,expected",
    [
        (None, ClaimKind.CLAIMED),
        ({"status": "PENDING"}, ClaimKind.CLAIMED),
        ({"status": "RUNNING"}, ClaimKind.CLAIMED),  # written by the workflow, no owner
        ({"status": "RUNNING", "owner": "me", "heartbeat_at": "2026-01-01T00:20:00.000000Z"}, ClaimKind.CLAIMED),
        ({"status": "RUNNING", "owner": "other", "heartbeat_at": "2026-01-01T00:20:00.000000Z"}, ClaimKind.REFUSED),
        ({"status": "RUNNING", "owner": "other", "heartbeat_at": "2026-01-01T00:00:00.000000Z"}, ClaimKind.CLAIMED),
        ({"status": "COMPLETED"}, ClaimKind.COMPLETED),
        ({"status": "FAILED"}, ClaimKind.REFUSED),
        ({"status": "FAILED", "retryable": True}, ClaimKind.CLAIMED),
        ({"status": "CANCELLED"}, ClaimKind.REFUSED),
    ],
)
def test_claim(item, expected):
    assert claim_kind(item, owner="me", stale_before=STALE) == expected


def test_only_the_owner_ends_a_running_run():
    running = {"status": "RUNNING", "owner": "other"}
    assert finish_decision(running, F, owner="me") == NO
    assert finish_decision(running, F, owner="other") == A
    assert finish_decision({"status": "RUNNING"}, C, owner="me") == A
    assert finish_decision({"status": "COMPLETED", "owner": "x"}, C, owner="me") == N
