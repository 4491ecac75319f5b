"""The README's promises that can drift: the environment table and the commands it shows."""

from __future__ import annotations

import re

from strategy_runner.settings import markdown_table

from .conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_environment_table_matches_settings():
    table = re.search(r"<!-- env-table:start -->\n(.*?)\n<!-- env-table:end -->", README, re.S)
    assert table, "README lost its env-table markers"
    expected = markdown_table()
    assert table.group(1).strip() == expected, (
        "README environment table is out of date; replace it with:\n" + expected
    )


def test_ci_runs_the_readme_test_command():
    assert "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^test: setup browser\n\t\$\(BIN\)/pytest", (ROOT / "Makefile").read_text(), re.M)
