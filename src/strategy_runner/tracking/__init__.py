"""Experiment tracking: a protocol (base.py) and its adapters."""
