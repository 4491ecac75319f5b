"""``strategy-runner``: the console entry point. Maps every outcome to an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import RunnerError, ValidationError, exit_code_for


def _backtest(args: argparse.Namespace) -> int:
    from . import logs, supervisor as runner
    from .settings import load_lenient, load_settings

    try:
        settings = load_settings()
    except ValidationError as exc:
        partial, invalid = load_lenient()
        if "run_id" in invalid:  # refused as itself: never recorded under another id
            return runner.refuse_invalid_run_id(partial, exc)
        # Record the failure under the RUN_ID and table that did validate, then exit.
        try:
            runner.open_run_dir(partial)
        except RunnerError as unusable:
            logs.bind_run(partial.run_id, partial.trace_id, process="supervisor")
            return runner.report_only(partial, exc if isinstance(unusable, ValidationError) else unusable)
        logs.bind_run(partial.run_id, partial.trace_id, process="supervisor")
        return runner.fail_before_start(partial, None, exc)
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
        "environment variables (`strategy-runner backtest --help` lists them).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    from .settings import help_text

    bt = sub.add_parser("backtest", help="run the backtest described by the environment", epilog=help_text(),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
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
    from .importer.command import add_parser as add_import_parser
    from .markets.take import add_parser as add_markets_parser

    add_import_parser(sub)  # import-data FILE --pair P --timeframe TF
    add_markets_parser(sub)  # markets snapshot --exchange NAME
    from .sweep.command import add_parser as add_sweep_parser

    add_sweep_parser(sub)  # sweep SPEC [--aws] | sweep status ID | sweep gather ID
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from . import logs
    from .logs import redact

    logs.configure()  # stderr, so stdout stays the command's output; `backtest` adds its run log
    try:
        code = args.func(args)
        sys.stdout.flush()  # inside the try: a reader that left (`runs --json | head`) is seen here
        return code
    except BrokenPipeError:
        # The reader has all it wanted; say nothing more (and nothing at interpreter exit).
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except RunnerError as exc:
        print(f"strategy-runner: {exc.error_name}: {redact(str(exc))}", file=sys.stderr)
        return exit_code_for(exc)


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
