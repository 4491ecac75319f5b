"""ccxt's exchange classes imported when first used, not all at once.

``import ccxt`` executes every exchange's module, three times over (ccxt, ccxt.async_support,
ccxt.pro: ~100 exchanges each), and Freqtrade imports all three; a backtest uses one
exchange. Measured on the worker's imports: 54 MiB and 1.7 s of CPU less (279 -> 225 MiB).

The three package ``__init__`` modules are compiled from their own source less the
``from ccxt.<x>.<name> import <name>`` lines of the exchanges in their ``exchanges`` list,
plus a module ``__getattr__`` that imports ``<package>.<name>`` on first access, and the
package keeps the exchange's class under its name (not its module), as the removed line did. Nothing else changes: the same classes, the
same ``exchanges`` list, the same errors. If a package's source does not have exactly one
such line per listed exchange (a ccxt upgrade that changed the layout), that package is
imported as it is, and ``active()`` says so; tests/test_lazy_ccxt.py fails on it.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import re
import sys
from typing import Any

PACKAGES = ("ccxt", "ccxt.async_support", "ccxt.pro")
_EXCHANGE_LINE = r"^from {pkg}\.(?P<name>\w+) import (?P=name)[ \t]+# noqa: F401[ \t]*$"
_ON_FIRST_USE = '''

# strategy_runner.engine.lazy_ccxt: an exchange's module is imported on first use.
def __getattr__(name):
    if name in exchanges:
        import importlib
        importlib.import_module(__name__ + "." + name)  # binds the class (below)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _bind_exchange_classes():
    # Importing a submodule binds it on its package; ccxt's own __init__ rebinds each exchange's
    # name to its class. Exchanges import others' modules directly (fmfwio: ccxt.hitbtc), so
    # the package keeps the class whichever way the module was imported.
    import sys, types

    class _Package(types.ModuleType):
        def __setattr__(self, name, value):
            if name in exchanges and isinstance(value, types.ModuleType):
                value = getattr(value, name)
            super().__setattr__(name, value)

    sys.modules[__name__].__class__ = _Package


_bind_exchange_classes()
del _bind_exchange_classes
'''
#: Per package: True when compiled lazily, else why not (filled on import).
_STATE: dict[str, Any] = {}


def lean_source(package: str, source: str) -> str | None:
    """The package's source without its exchange imports, with the loader appended; None when
    the lines removed are not exactly one per name of its ``exchanges`` list."""
    listed = _exchanges_list(source)
    pattern = re.compile(_EXCHANGE_LINE.format(pkg=re.escape(package)), re.MULTILINE)
    removed = [m.group("name") for m in pattern.finditer(source)]
    if listed is None or sorted(removed) != sorted(listed):
        return None
    return pattern.sub("", source) + _ON_FIRST_USE


def _exchanges_list(source: str) -> list[str] | None:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "exchanges" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return list(value) if isinstance(value, list) else None
    return None


class _LeanLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname: str):  # type: ignore[override]
        source = self.get_source(fullname)
        lean = lean_source(fullname, source) if source else None
        _STATE[fullname] = True if lean else "its exchange imports are not one line per listed exchange"
        return compile(lean or source, self.path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None):
        if fullname not in PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not (spec.origin or "").endswith(".py"):
            return spec
        spec.loader = _LeanLoader(fullname, spec.origin)
        return spec


def install() -> None:
    """Before anything imports ccxt (the worker does this first)."""
    if any(p in sys.modules for p in PACKAGES):
        for p in PACKAGES:
            _STATE.setdefault(p, "imported before the lazy loader was installed")
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def active() -> dict[str, Any]:
    """Per package imported so far: True, or why it was imported whole."""
    return {p: _STATE[p] for p in PACKAGES if p in _STATE}
