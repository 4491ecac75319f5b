"""Sweeps: a grid of backtests (strategies x parameters x pairs x timeranges), each one normal run.

``spec`` reads the TOML and expands it into items with stable RUN_IDs (``<sweep id>-<n>``);
``local`` runs them on this machine (``strategy-runner sweep SPEC``), resumable; ``result``
gathers the items' outcomes into ``sweep-result.json`` and ranks them.
"""

from .spec import SweepItem, SweepSpec, load_spec

__all__ = ["SweepItem", "SweepSpec", "load_spec"]
