"""docs/failures.md lists every fault case the suite runs, and only those."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
DOC = HERE.parents[1] / "docs" / "failures.md"


def test_the_failure_table_names_every_case_of_the_suite():
    in_suite = {name for path in HERE.glob("test_*.py") if path.name != Path(__file__).name
                for name in re.findall(r"^def (test_\w+)\(", path.read_text(), re.M)}
    in_doc = set(re.findall(r"`(test_\w+)`", DOC.read_text()))
    assert in_suite - in_doc == set(), "cases missing from docs/failures.md"
    assert in_doc - in_suite == set(), "docs/failures.md lists cases the suite no longer has"


def test_the_error_table_names_every_error_of_the_runner():
    from strategy_runner import errors

    doc = DOC.read_text()
    for cls in errors._subclasses(errors.RunnerError):
        kind = "transient" if cls.retryable else "permanent"
        row = f"| `{cls.error_name}` | {cls.exit_code} | {kind if cls is not errors.Cancelled else '—'} |"
        assert row in doc, f"docs/failures.md has no row starting {row!r}"
