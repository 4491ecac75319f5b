"""Result cache: reuse a COMPLETED result whose inputs are byte-for-byte the same.

key.py computes the content-addressed key (no Freqtrade import), local.py stores entries
under RUNS_DIR/.cache/<key>/, hook.py is what the supervisor calls around the worker.
"""
