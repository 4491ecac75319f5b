"""What a regression run prints and writes for CI: a table, JUnit XML, a Markdown summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .compare import ERROR, FAIL, MISSING, CaseResult, MetricDiff

HEADLINE = ("total_trades", "profit_total", "max_drawdown_account")


def _headline_cells(r: CaseResult, moved: str) -> list[str]:
    """One cell per headline metric: its value, or ``moved`` (baseline, current) where it moved."""
    cells = []
    for m in HEADLINE:
        diff = next((d for d in r.diffs if d.metric == m), None)
        if diff is not None and not diff.ok:
            cells.append(moved.format(_num(diff.baseline), _num(diff.current)))
        else:
            cells.append(_num(r.metrics.get(m)) if m in r.metrics else "—")
    return cells


def _num(v: float | None) -> str:
    if v is None:
        return "—"
    if v != v:
        return "nan"
    if float(v).is_integer() and abs(v) < 1e9:
        return f"{v:.0f}"
    return f"{v:.6g}"


def _delta(d: MetricDiff) -> str:
    if d.delta is None:
        return "—"
    rel = f" ({d.rel * 100:+.2f}%)" if d.rel is not None else ""
    return f"{d.delta:+.6g}{rel}"


def diff_lines(result: CaseResult, indent: str = "  ") -> list[str]:
    """The metrics that moved and why, readable in a log or a JUnit failure."""
    lines = []
    if result.error:
        lines.append(f"{indent}error: {result.error}")
    moved = result.moved
    if moved:
        rows = [("metric", "baseline", "current", "delta", "tolerance")]
        rows += [(d.metric, _num(d.baseline), _num(d.current), _delta(d), d.tolerance) for d in moved]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            lines.append(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for reason in result.why:
        lines.append(f"{indent}why: {reason}")
    return lines


def table(results: list[CaseResult], suite_path: Path) -> str:
    counts = {s: sum(r.status == s for r in results) for s in {r.status for r in results}}
    head = f"regression suite {suite_path}: {len(results)} cases, " + ", ".join(
        f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    rows = [("case", "status", *HEADLINE, "time", "run")]
    for r in results:
        cells = _headline_cells(r, "{} → {}")
        hit = " (cached)" if r.cache_hit else ""
        rows.append((r.case.name, r.status, *cells, f"{r.seconds:.1f}s{hit}", r.run_id or "—"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()

    lines = [head, "", fmt(rows[0])]
    for r, row in zip(results, rows[1:]):
        lines.append(fmt(row))
        if not r.ok or r.why:
            lines += diff_lines(r, indent="    ")
    return "\n".join(lines)


def junit_xml(results: list[CaseResult], suite_path: Path, path: Path) -> None:
    suites = ET.Element("testsuites")
    ts = ET.SubElement(suites, "testsuite", name=f"regression:{suite_path.stem}", tests=str(len(results)),
                       failures=str(sum(r.status in (FAIL, MISSING) for r in results)),
                       errors=str(sum(r.status == ERROR for r in results)),
                       time=f"{sum(r.seconds for r in results):.3f}")
    for r in results:
        tc = ET.SubElement(ts, "testcase", classname=f"regression.{suite_path.stem}", name=r.case.name,
                           time=f"{r.seconds:.3f}")
        detail = "\n".join(diff_lines(r, indent=""))
        if r.status == ERROR:
            ET.SubElement(tc, "error", message=(r.error or "run failed")[:500]).text = detail
        elif r.status in (FAIL, MISSING):
            message = (f"{len(r.moved)} metric(s) moved: " + ", ".join(d.metric for d in r.moved)
                       if r.status == FAIL else "no baseline recorded (run with --update-baselines)")
            ET.SubElement(tc, "failure", message=message[:500]).text = detail
        out = [f"run_id: {r.run_id}", f"results: {r.results_dir}", f"cache_hit: {r.cache_hit}"]
        if r.ok and r.why:
            out.append("inputs changed, metrics held: " + "; ".join(r.why))
        ET.SubElement(tc, "system-out").text = "\n".join(out)
    ET.indent(suites)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def markdown(results: list[CaseResult], suite_path: Path) -> str:
    bad = [r for r in results if not r.ok]
    lines = [f"## Regression backtests: {'all ' + str(len(results)) + ' passed' if not bad else str(len(bad)) + ' of ' + str(len(results)) + ' failed'}",
             "", f"Suite `{suite_path}`", "",
             "| case | status | " + " | ".join(HEADLINE) + " | why |",
             "|---|---|" + "---|" * len(HEADLINE) + "---|"]
    for r in results:
        cells = _headline_cells(r, "**{} → {}**")
        why = "; ".join(r.why) or (r.error or "")
        lines.append(f"| `{r.case.name}` | {r.status} | " + " | ".join(cells) + f" | {why.replace('|', '/')} |")
    for r in bad:
        lines += ["", f"### `{r.case.name}`: {r.status}", "", "```", *diff_lines(r, indent=""), "```"]
    return "\n".join(lines) + "\n"
