"""``strategy-runner``: the console entry point. Maps every outcome to an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import RunnerError, ValidationError, exit_code_for


def _backtest(args: argparse.Namespace) -> int:
    from . import adapters, logs, runner
    from .settings import load_lenient, load_settings

    try:
        settings = load_settings()
    except ValidationError as exc:
        # Record the failure under whatever RUN_ID/table did validate, then exit.
        partial = load_lenient()
        partial.run_dir.mkdir(parents=True, exist_ok=True)
        logs.configure(partial.log_format, partial.log_level, partial.run_dir / "run.log")
        logs.bind_run(partial.run_id, partial.trace_id, process="supervisor")
        return runner.fail_before_start(partial, adapters.build(partial), exc)
    return runner.backtest(settings)


def _generate_data(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .sample_data import generate

    for path in generate(Path(args.data_dir)):
        print(path)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="strategy-runner",
        description="Run a Freqtrade backtest that owns its lifecycle. The run is read from "
        "environment variables (see README).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    bt = sub.add_parser("backtest", help="run the backtest described by the environment")
    # The v8 workflow passes `backtest --config` (the config comes from CONFIG_S3_PATH).
    bt.add_argument("--config", nargs="?", const=None, help=argparse.SUPPRESS)
    bt.set_defaults(func=_backtest)
    reg = sub.add_parser("regression", help="run the regression suite and compare with the baselines")
    from .regression.command import add_arguments as add_regression_arguments, run_command as run_regression

    add_regression_arguments(reg)
    reg.set_defaults(func=run_regression)
    gen = sub.add_parser("generate-data", help="(re)generate the bundled sample candles")
    gen.add_argument("--data-dir", default="data")
    gen.set_defaults(func=_generate_data)
    from .operator.commands import add_parsers

    add_parsers(sub)  # status RUN_ID, runs --status/--since/--trace
    from .reap import add_parser as add_reap_parser

    add_reap_parser(sub)  # reap [--lease-seconds N] [--dry-run] [--json]
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from . import logs

    logs.configure()  # stderr, so stdout stays the command's output; `backtest` adds its run log
    try:
        return args.func(args)
    except RunnerError as exc:
        print(f"strategy-runner: {exc.error_name}: {exc}", file=sys.stderr)
        return exit_code_for(exc)


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
