"""Operator commands: ``strategy-runner status RUN_ID`` and ``strategy-runner runs``."""
