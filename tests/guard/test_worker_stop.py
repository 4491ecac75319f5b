"""The engine's stop watcher: Freqtrade's abort flag first, the main thread interrupted when
Freqtrade is not in a loop that polls it."""

from __future__ import annotations

import signal
import time
from types import SimpleNamespace

import pytest

from strategy_runner.engine.backtest import ABORT_GRACE_SECONDS, _watch_stop


@pytest.fixture
def sigint_raises():
    previous = signal.signal(signal.SIGINT, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt("second")))
    yield
    signal.signal(signal.SIGINT, previous)


def test_the_abort_flag_is_set_as_soon_as_a_stop_is_asked_for(sigint_raises):
    bt = SimpleNamespace(abort=False)
    asked = []
    _watch_stop(bt, lambda: bool(asked))
    time.sleep(0.1)
    assert bt.abort is False
    asked.append(1)
    deadline = time.monotonic() + 2
    while not bt.abort and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bt.abort is True
    bt._runner_stop_thread.set()  # the loop noticed the flag and ended: no interrupt follows
    time.sleep(ABORT_GRACE_SECONDS + 0.3)


def test_code_that_never_polls_the_flag_is_interrupted_after_the_grace(sigint_raises):
    bt = SimpleNamespace(abort=False)
    _watch_stop(bt, lambda: True)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt, match="second"):
        while time.monotonic() - started < 10:  # e.g. Freqtrade writing its result files
            sum(range(1000))
    assert ABORT_GRACE_SECONDS <= time.monotonic() - started < ABORT_GRACE_SECONDS + 2
    assert bt.abort is True
