"""report.html: one self-contained page per run (inline SVG, CSS and JS; no network)."""
