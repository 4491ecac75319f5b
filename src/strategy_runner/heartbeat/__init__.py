"""Telling the orchestrator we are alive, and how the run ended: protocol and adapters."""
