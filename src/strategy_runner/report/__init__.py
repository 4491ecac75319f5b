"""report.html (one run) and comparison.html (several): self-contained pages, inline SVG, CSS
and JS, no network, so they open offline, from S3 and in MLflow's artifact view.

``data`` reads a run's files (``equity_curve`` is the closed-trade balance for trackers);
``metrics`` and ``series`` compute what Freqtrade did not; ``candles`` reads and merges price
candles; ``svg``, ``tables``, ``sections`` and ``page`` draw; ``html`` writes a run's report
(``write_report``, called by the worker), ``compare`` the comparison (sweeps, regression).
"""
