"""engine/lazy_ccxt.py: ccxt's exchanges are imported on first use, and are the same classes."""

from __future__ import annotations

import json
import subprocess
import sys

from strategy_runner.engine import lazy_ccxt

CHECK = r'''
import json, sys
from strategy_runner.engine import lazy_ccxt
lazy_ccxt.install()
import freqtrade.optimize.backtesting  # what the worker imports
import ccxt, ccxt.async_support, ccxt.pro
loaded_before = sorted(m for m in sys.modules if m.startswith("ccxt.") and m.rsplit(".", 1)[-1] in ccxt.exchanges)
sync, pro = ccxt.binance, ccxt.pro.binance
out = {"active": lazy_ccxt.active(), "loaded_before": loaded_before,
       "binance_is_class": isinstance(sync, type) and sync.__module__ == "ccxt.binance",
       "pro_subclasses_async": issubclass(pro, ccxt.async_support.binance),
       "exchanges": [len(ccxt.exchanges), len(ccxt.async_support.exchanges), len(ccxt.pro.exchanges)]}
try:
    ccxt.not_an_exchange
except AttributeError as exc:
    out["unknown"] = str(exc)
if "--all" in sys.argv:  # every listed exchange resolves to its class, in every package
    out["classes"] = {pkg.__name__: sorted(f"{n}={getattr(pkg, n).__module__}" for n in pkg.exchanges)
                      for pkg in (ccxt, ccxt.async_support, ccxt.pro)}
print(json.dumps(out))
'''

STOCK = r'''
import json, ccxt, ccxt.async_support, ccxt.pro
print(json.dumps({pkg.__name__: sorted(f"{n}={getattr(pkg, n).__module__}" for n in pkg.exchanges)
                  for pkg in (ccxt, ccxt.async_support, ccxt.pro)}))
'''


def run(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_worker_imports_no_exchange_until_one_is_used():
    out = run(CHECK)
    assert out["active"] == {p: True for p in lazy_ccxt.PACKAGES}, "a ccxt upgrade changed its package layout"
    assert out["loaded_before"] == []
    assert out["binance_is_class"] and out["pro_subclasses_async"]
    assert min(out["exchanges"]) > 50
    assert "not_an_exchange" in out["unknown"]


def test_every_exchange_is_the_class_plain_ccxt_has():
    assert run(CHECK, "--all")["classes"] == run(STOCK)


def test_a_changed_layout_is_imported_whole():
    good = "exchanges = ['a', 'b']\nfrom ccxt.a import a  # noqa: F401\nfrom ccxt.b import b  # noqa: F401\n"
    assert lazy_ccxt.lean_source("ccxt", good) is not None
    assert "from ccxt.a import a" not in lazy_ccxt.lean_source("ccxt", good)
    missing = "exchanges = ['a', 'b', 'c']\nfrom ccxt.a import a  # noqa: F401\nfrom ccxt.b import b  # noqa: F401\n"
    assert lazy_ccxt.lean_source("ccxt", missing) is None
    assert lazy_ccxt.lean_source("ccxt", "from ccxt.a import a  # noqa: F401\n") is None  # no list
