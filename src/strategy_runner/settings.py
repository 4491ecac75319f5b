"""Every environment variable the runner reads, declared once, typed, with its default.

This module is the only reader of the environment. ``load_settings()`` turns any invalid
value into a ``ValidationError`` that names the variable, the value received and what
was expected, before any work starts.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ValidationError

# Timeframes Binance (the bundled exchange) serves candles for.
TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")
_PAIR = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,10}(:[A-Z0-9]{1,10})?$")
_DAY = r"(\d{8}|\d{4}-\d{2}-\d{2})"
_TIMERANGE = re.compile(rf"^(?P<start>{_DAY})?-(?P<end>{_DAY})?$")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # fullmatch: no trailing newline
_STRATEGY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


#: LEASE_SECONDS must cover this many heartbeat intervals, so a live attempt whose heartbeats
#: are merely late is never reaped or taken over.
LEASE_HEARTBEATS = 3


def new_run_id() -> str:
    return f"local-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def parse_pairs(raw: Any) -> tuple[str, ...]:
    """``States.JsonToString($.symbols)`` (a JSON array) or a plain comma list."""
    if isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        text = str(raw).strip()
        if not text:
            return ()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg})") from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError("a JSON array must hold pair strings only")
        else:
            items = text.split(",")
    pairs = tuple(p.strip() for p in items)
    bad = [p for p in pairs if not _PAIR.match(p)]
    if bad:
        raise ValueError(f"{', '.join(repr(p) for p in bad)} is not a pair like BTC/USDT or BTC/USDT:USDT")
    if len(set(pairs)) != len(pairs):
        raise ValueError("a pair is listed twice")
    if len({":" in p for p in pairs}) > 1:
        raise ValueError("mixes spot pairs (BTC/USDT) and futures pairs (BTC/USDT:USDT)")
    return pairs


def _parse_day(text: str) -> date:
    return datetime.strptime(text.replace("-", ""), "%Y%m%d").date()


def parse_timerange(raw: str) -> str:
    """Normalise to Freqtrade's ``YYYYMMDD-YYYYMMDD`` (either end may be open).

    Also accepts ISO days, which is what ``States.Format('{}-{}', $.start_date, $.end_date)``
    builds: ``2024-01-01-2024-06-01``.
    """
    match = _TIMERANGE.match(raw.strip())
    if not match or raw.strip() == "-":
        raise ValueError("not YYYYMMDD-YYYYMMDD (either end may be open) or YYYY-MM-DD-YYYY-MM-DD")
    try:
        start = _parse_day(match["start"]) if match["start"] else None
        end = _parse_day(match["end"]) if match["end"] else None
    except ValueError:
        raise ValueError("holds a day that does not exist") from None
    if start and end and start >= end:
        raise ValueError("starts on or after its end")
    return "-".join(f"{d:%Y%m%d}" if d else "" for d in (start, end))


class Settings(BaseSettings):
    """The run, read from the environment. Frozen: nothing changes it after start-up."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True)

    # --- The run: what the Step Functions workflows pass to the container ---------------
    run_id: str = Field(
        default_factory=new_run_id,
        validation_alias=AliasChoices("RUN_ID", "TRADAI_RUN_ID"),
        description="Identifier of the run (v8: TRADAI_RUN_ID). Generated when absent.",
    )
    strategy: str = Field(
        "EmaCrossSpot", validation_alias="STRATEGY",
        description="Strategy class name; resolved only inside STRATEGIES_DIR.",
    )
    strategy_version: str = Field(
        "", validation_alias="STRATEGY_VERSION", description="Version label recorded with the run."
    )
    timeframe: str | None = Field(
        None, validation_alias="TIMEFRAME",
        description="Candle timeframe override; unset: the config's, else the strategy's own "
        "(the summary records which ran and where it came from).",
    )
    timerange: str = Field(
        "20240901-20241201", validation_alias="TIMERANGE",
        description="YYYYMMDD-YYYYMMDD (open ends allowed) or YYYY-MM-DD-YYYY-MM-DD. End exclusive.",
    )
    pairs: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="PAIRS",
        description='JSON array (["BTC/USDT:USDT"]) or comma list; empty: the config\'s whitelist.',
    )
    experiment_name: str = Field(
        "strategy-runner", validation_alias=AliasChoices("EXPERIMENT_NAME", "TRADAI_EXPERIMENT"),
        description="MLflow experiment (v8: TRADAI_EXPERIMENT); created when missing.",
    )
    trace_id: str = Field(
        default_factory=lambda: uuid.uuid4().hex, validation_alias="TRACE_ID",
        description="Correlation id on every log line and status item. Generated when absent.",
    )
    config: str | None = Field(
        None, validation_alias="CONFIG",
        description="Freqtrade config: a file name in CONFIGS_DIR or a path (absolute or relative to the working "
        "directory); default base.json for spot, futures.json for futures pairs.",
    )
    config_s3_path: str | None = Field(
        None, validation_alias="CONFIG_S3_PATH",
        description="s3:// Freqtrade config overlay merged over the base config (v8 workflow).",
    )
    strategy_parameters: Annotated[dict[str, Any] | None, NoDecode] = Field(
        None, validation_alias="STRATEGY_PARAMETERS",
        description='JSON object of the strategy\'s hyperoptable parameter values ({"fast": 8}), applied like '
        "Freqtrade's parameter file and checked after the strategy loads (a sweep sets it).",
    )
    sweep_id: str | None = Field(
        None, validation_alias="SWEEP_ID", description="The sweep this run is an item of (set by `strategy-runner sweep`)."
    )
    sweep_state_machine_arn: str | None = Field(
        None, validation_alias="SWEEP_STATE_MACHINE_ARN",
        description="The deployed backtest-sweep workflow that `strategy-runner sweep SPEC --aws` starts.",
    )

    # --- Where the lifecycle is recorded --------------------------------------------------
    dynamodb_table: str | None = Field(
        None, validation_alias="DYNAMODB_TABLE",
        description="Workflow-state table; unset: a local status store under RUNS_DIR.",
    )
    dynamodb_key: str = Field(
        "job_id", validation_alias="DYNAMODB_KEY", description="Partition key name of the table."
    )
    results_bucket: str | None = Field(
        None, validation_alias="RESULTS_BUCKET",
        description="S3 bucket for results (backtests/<RUN_ID>/); unset: RUNS_DIR only.",
    )
    results_prefix: str = Field(
        "backtests", validation_alias="RESULTS_PREFIX", description="Key prefix for results in RESULTS_BUCKET."
    )
    mlflow_tracking_uri: str | None = Field(
        None, validation_alias="MLFLOW_TRACKING_URI",
        description="MLflow server; unset: sqlite:///mlflow.db in the working directory.",
    )
    tracking: bool = Field(
        True, validation_alias="TRACKING",
        description="Log the run to MLflow; false: no tracking (regression cases default to false).",
    )
    mlflow_timeout_seconds: float = Field(
        10.0, gt=0, le=300, validation_alias="MLFLOW_TIMEOUT_SECONDS",
        description="Deadline for each MLflow step; past it tracking is skipped, never the run.",
    )
    mlflow_client: Literal["auto", "library"] = Field(
        "auto", validation_alias="MLFLOW_CLIENT",
        description="auto: an http(s) server is called directly over its REST API (tracking/rest.py) and an "
                    "existing sqlite store of the pinned schema is written directly (tracking/sqlite.py), neither "
                    "importing mlflow; other stores (a new sqlite file included) through the mlflow library; "
                    "library: always the library (other auth, TLS options, artifact stores other than the "
                    "server's proxy).",
    )
    mlflow_tracking_username: str | None = Field(
        None, validation_alias="MLFLOW_TRACKING_USERNAME", description="MLflow server basic-auth user.",
    )
    mlflow_tracking_password: pydantic.SecretStr | None = Field(
        None, validation_alias="MLFLOW_TRACKING_PASSWORD", description="MLflow server basic-auth password.",
    )
    mlflow_tracking_token: pydantic.SecretStr | None = Field(
        None, validation_alias="MLFLOW_TRACKING_TOKEN", description="MLflow server bearer token.",
    )
    task_token: str | None = Field(
        None, max_length=2048, validation_alias="TASK_TOKEN",
        description="Step Functions task token ($$.Task.Token): heartbeats and the callback.",
    )
    heartbeat_interval_seconds: float = Field(
        60.0, ge=1, le=3600, validation_alias="HEARTBEAT_INTERVAL_SECONDS",
        description="Seconds between heartbeats (status item and Step Functions).",
    )
    lease_seconds: float = Field(
        600.0, gt=0, validation_alias="LEASE_SECONDS",
        description="A RUNNING run whose heartbeat is older than this is stale (takeover, reap); "
        f"at least {LEASE_HEARTBEATS} heartbeat intervals.",
    )

    # --- Local paths -------------------------------------------------------------------
    data_dir: Path = Field(Path("data"), validation_alias="DATA_DIR", description="Candles in Freqtrade's layout.")
    data_s3_path: str | None = Field(
        None, validation_alias="DATA_S3_PATH",
        description="s3:// location of candles in Freqtrade's layout, fetched into DATA_DIR.",
    )
    runs_dir: Path = Field(Path("runs"), validation_alias="RUNS_DIR", description="Results: runs/<RUN_ID>/.")
    strategies_dir: Path = Field(
        Path("strategies"), validation_alias="STRATEGIES_DIR", description="Where strategies are looked up."
    )
    configs_dir: Path = Field(
        Path("configs"), validation_alias="CONFIGS_DIR", description="Base configs and the markets snapshot."
    )
    markets: Literal["snapshot", "infer", "live"] = Field(
        "snapshot", validation_alias="MARKETS",
        description="snapshot: MARKETS_PATH, else DATA_DIR/markets/<exchange>.json, else CONFIGS_DIR/markets/; "
        "infer: also build entries for pairs no snapshot has (docs/markets.md); live: from the exchange (network).",
    )
    markets_path: str | None = Field(
        None, validation_alias="MARKETS_PATH", description="A markets snapshot file (local path or s3://) to use first."
    )
    live_markets: bool = Field(
        False, validation_alias="LIVE_MARKETS",
        description="Load markets from the exchange instead of the shipped snapshot (needs network).",
    )
    fast_precision: bool = Field(
        True, validation_alias="FAST_PRECISION",
        description="Infer price precision from candles vectorised and price trades in C decimals (the same "
        "results as Freqtrade's own code, proven by tests); false: Freqtrade's own code.",
    )
    allow_missing_informative: bool = Field(
        False, validation_alias="ALLOW_MISSING_INFORMATIVE",
        description="Run even when an informative pair's candles are missing (recorded in the summary); "
        "false: DataStaleError naming each missing pair, timeframe and candle type.",
    )
    enable_protections: bool = Field(
        False, validation_alias="ENABLE_PROTECTIONS",
        description="Run the strategy's protections (Freqtrade's --enable-protections); the config's "
        "enable_protections also turns them on. The summary records whether they ran.",
    )
    result_cache: bool = Field(
        True, validation_alias="RESULT_CACHE",
        description="Reuse an earlier COMPLETED result whose inputs (data, strategy, config, engine) "
        "are identical instead of recomputing (index in RUNS_DIR/.cache/).",
    )

    # --- Guards ------------------------------------------------------------------------
    memory_limit_mb: int | None = Field(
        None, gt=0, validation_alias="MEMORY_LIMIT_MB",
        description="Memory limit; unset: discovered from cgroups, ECS metadata, or the machine.",
    )
    memory_soft_limit_pct: float = Field(
        90.0, gt=0, le=100, validation_alias="MEMORY_SOFT_LIMIT_PCT",
        description="Stop the backtest past this share of the memory limit.",
    )

    # --- Logs and identity -------------------------------------------------------------
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", validation_alias="LOG_FORMAT", description="auto: console on a terminal, JSON lines otherwise."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="LOG_LEVEL", description="Lowest level logged."
    )
    log_group: str = Field(
        "/ecs/tradai-strategy-dev", validation_alias="LOG_GROUP",
        description="CloudWatch log group of the strategy task (runbooks: /ecs/tradai-strategy-<env>); "
        "`strategy-runner status` points there.",
    )
    log_stream_prefix: str = Field(
        "ecs/strategy", validation_alias="LOG_STREAM_PREFIX",
        description="The task definition's awslogs-stream-prefix and container name: a run's stream "
        "is <this>/<ECS task id>.",
    )
    image_version: str = Field("", validation_alias="IMAGE_VERSION", description="Set by the image build.")
    image_revision: str = Field("", validation_alias="IMAGE_REVISION", description="Git revision of the image.")
    ecs_metadata_uri: str | None = Field(
        None, validation_alias="ECS_CONTAINER_METADATA_URI_V4",
        description="Set by ECS: task ARN (the run's owner) and memory limits.",
    )
    aws_endpoint_url: str | None = Field(
        None, validation_alias="AWS_ENDPOINT_URL",
        description="AWS endpoint override (an emulator); boto3 also honours it natively.",
    )
    # boto3's per-service endpoint variables win over AWS_ENDPOINT_URL, as boto3 documents.
    aws_endpoint_url_dynamodb: str | None = Field(
        None, validation_alias="AWS_ENDPOINT_URL_DYNAMODB", description="DynamoDB endpoint (over AWS_ENDPOINT_URL)."
    )
    aws_endpoint_url_s3: str | None = Field(
        None, validation_alias="AWS_ENDPOINT_URL_S3", description="S3 endpoint (over AWS_ENDPOINT_URL)."
    )
    aws_endpoint_url_sfn: str | None = Field(
        None, validation_alias="AWS_ENDPOINT_URL_SFN", description="Step Functions endpoint (over AWS_ENDPOINT_URL)."
    )
    aws_region: str = Field(
        "us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"), description="AWS region."
    )

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, v: str) -> str:
        if not _RUN_ID.fullmatch(v):
            raise ValueError("expected 1-128 characters of letters, digits, '.', '_' or '-', starting alphanumeric")
        return v

    @model_validator(mode="after")
    def _lease_covers_heartbeats(self) -> Settings:
        if self.lease_seconds < LEASE_HEARTBEATS * self.heartbeat_interval_seconds:
            raise ValueError(
                f"LEASE_SECONDS={self.lease_seconds:g} must be at least {LEASE_HEARTBEATS} x "
                f"HEARTBEAT_INTERVAL_SECONDS={self.heartbeat_interval_seconds:g} "
                f"({LEASE_HEARTBEATS * self.heartbeat_interval_seconds:g}), or a live run looks dead"
            )
        return self

    def endpoint_url(self, service: str) -> str | None:
        """The endpoint for a boto3 service: its own variable, else AWS_ENDPOINT_URL."""
        own = {"dynamodb": self.aws_endpoint_url_dynamodb, "s3": self.aws_endpoint_url_s3,
               "stepfunctions": self.aws_endpoint_url_sfn}.get(service)
        return own or self.aws_endpoint_url or None

    @field_validator("strategy_parameters", mode="before")
    @classmethod
    def _strategy_parameters(cls, v: Any) -> dict[str, Any] | None:
        if v is None or v == "":
            return None
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg})") from None
        if not isinstance(v, dict) or not all(
                re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(k)) and isinstance(x, (int, float, str, bool))
                for k, x in v.items()):
            raise ValueError('expected a JSON object of parameter names to numbers, strings or booleans, e.g. {"fast": 8}')
        return v

    @property
    def markets_mode(self) -> str:
        """MARKETS, with the older LIVE_MARKETS=true as an alias of MARKETS=live."""
        return "live" if self.live_markets else self.markets

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, v: str) -> str:
        if not _STRATEGY.match(v):
            raise ValueError("expected a strategy class name (letters, digits, '_'), not a path")
        return v

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, v: str | None) -> str | None:
        if v is not None and v not in TIMEFRAMES:
            raise ValueError(f"expected one of {', '.join(TIMEFRAMES)}")
        return v

    @field_validator("timerange")
    @classmethod
    def _timerange(cls, v: str) -> str:
        return parse_timerange(v)

    @field_validator("pairs", mode="before")
    @classmethod
    def _pairs(cls, v: Any) -> tuple[str, ...]:
        return parse_pairs(v)

    @field_validator("experiment_name", "trace_id")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("expected a non-empty value")
        return v

    @field_validator("aws_endpoint_url", "aws_endpoint_url_dynamodb", "aws_endpoint_url_s3", "aws_endpoint_url_sfn")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"https?://(\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]]+)(:\d{1,5})?(/\S*)?", v):
            raise ValueError("expected an http(s)://host[:port] URL")
        return v

    @field_validator("config_s3_path", "data_s3_path")
    @classmethod
    def _s3_uri(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", v):
            raise ValueError("expected an s3://bucket/key URI")
        return v

    @field_validator("config")
    @classmethod
    def _config_name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[^\x00\n]+\.json", v):
            raise ValueError("expected a .json Freqtrade config: a file name in CONFIGS_DIR, or a path")
        return v

    @property
    def config_name(self) -> str:
        """CONFIG, else the futures config for futures pairs (BTC/USDT:USDT), else base.json."""
        if self.config:
            return self.config
        return "futures.json" if self.pairs and ":" in self.pairs[0] else "base.json"

    @property
    def config_path(self) -> Path:
        """CONFIG as a path (absolute, or relative to the working directory) when it names one,
        else the file of that name in CONFIGS_DIR."""
        name = self.config_name
        in_configs = self.configs_dir / name
        if "/" in name or (not in_configs.exists() and Path(name).is_file()):
            return Path(name)
        return in_configs

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.run_id


def env_name(field: str) -> str:
    """The environment variable (first alias) a settings field is read from."""
    alias = Settings.model_fields[field].validation_alias
    return alias.choices[0] if isinstance(alias, AliasChoices) else str(alias)


def _fields_by_env() -> dict[str, str]:
    """Environment variable (aliases included) -> settings field."""
    names: dict[str, str] = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        for name in alias.choices if isinstance(alias, AliasChoices) else [alias]:
            names[str(name)] = field
    return names


def env_names() -> set[str]:
    """Every environment variable the runner reads, aliases included."""
    return set(_fields_by_env())


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the environment; every problem becomes one readable ValidationError."""
    try:
        return Settings(**overrides)
    except pydantic.ValidationError as exc:
        problems = []
        fields = _fields_by_env()
        for err in exc.errors():
            expected = str(err["msg"]).removeprefix("Value error, ")
            if not err["loc"]:  # a rule across variables: its message names them
                problems.append(expected)
                continue
            loc = str(err["loc"][0])
            var = env_name(fields[loc]) if loc in fields else loc
            problems.append(f"{var}={err.get('input')!r}: {expected}")
        raise ValidationError("invalid environment: " + "; ".join(problems)) from None


#: What strategy code (the worker) never sees: the task token, AWS and MLflow credentials.
WORKER_SECRETS = ("TASK_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                  "AWS_ACCESS_KEY_ID", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                  "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                  "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment a worker process starts with: ours, with the run's ids fixed, and no
    secret the strategy code it runs has no use for."""
    return child_environment(
        {"RUN_ID": settings.run_id, "TRACE_ID": settings.trace_id, "PYTHONUNBUFFERED": "1"},
        drop=("TRADAI_RUN_ID", *WORKER_SECRETS),
    )


def mlflow_client_environment(settings: Settings) -> dict[str, str]:
    """The environment of an MLflow client process: the worker's, with the client's
    retries bounded (its defaults retry for minutes) to fit MLFLOW_TIMEOUT_SECONDS."""
    # AWS credentials stay (an S3 artifact store needs them); the task token does not.
    env = child_environment({"RUN_ID": settings.run_id, "TRACE_ID": settings.trace_id, "PYTHONUNBUFFERED": "1"},
                            drop=("TRADAI_RUN_ID", "TASK_TOKEN"))
    request_timeout = max(1, int(settings.mlflow_timeout_seconds / 2))
    env.update(
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="1", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1",
        MLFLOW_HTTP_REQUEST_BACKOFF_JITTER="0", MLFLOW_HTTP_REQUEST_TIMEOUT=str(request_timeout),
        # MLflow 3 phones home (telemetry) unless told not to: nothing leaves the machine.
        MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
    )
    return env


def child_environment(overrides: dict[str, str], drop: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment for a child ``strategy-runner`` (regression cases, benchmarks): ours, less ``drop``, plus ``overrides``."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(overrides)
    return env


def load_lenient() -> tuple[Settings, set[str]]:
    """Settings with every invalid variable replaced by its default, and the invalid fields.

    Used only to record a validation failure (status item, callback) under the right
    RUN_ID and table when the run itself cannot start (never under another RUN_ID: the
    caller refuses an invalid ``run_id`` without writing an item).
    """
    try:
        return Settings(), set()
    except pydantic.ValidationError as exc:
        fields = _fields_by_env()
        bad = {fields[str(e["loc"][0])] for e in exc.errors() if e["loc"] and str(e["loc"][0]) in fields}
        if any(not e["loc"] for e in exc.errors()) or bad & {"lease_seconds", "heartbeat_interval_seconds"}:
            bad |= {"lease_seconds", "heartbeat_interval_seconds"}  # the rule across both: reset both
    overrides: dict[str, Any] = {}
    for name in bad:
        info = Settings.model_fields[name]
        default = info.default_factory() if info.default_factory else info.default
        overrides[env_name(name)] = default
    return Settings(**overrides), bad


def documented_variables() -> list[tuple[list[str], str, str]]:
    """Every variable: its names (first the main one), its default as shown to people, its meaning."""
    rows = []
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        names = [str(n) for n in (alias.choices if isinstance(alias, AliasChoices) else [alias])]
        if info.default_factory is not None:
            default = "generated"
        elif info.default in (None, "", ()):
            default = "unset"
        else:
            default = str(info.default)
        rows.append((names, default, info.description or ""))
    return rows


def markdown_table() -> str:
    """The README's environment table (tests/test_readme.py keeps the README in step)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for names, default, meaning in documented_variables():
        shown = f"`{names[0]}`" + "".join(f" / `{n}`" for n in names[1:])
        rows.append(f"| {shown} | {default if default in ('generated', 'unset') else f'`{default}`'} | {meaning} |")
    return "\n".join(rows)


def help_text() -> str:
    """`strategy-runner backtest --help`: the variables a run is read from."""
    lines = ["The run is read from these environment variables (default in brackets):", ""]
    for names, default, meaning in documented_variables():
        lines.append(f"  {' / '.join(names)} [{default}]")
        lines.append(f"      {meaning}")
    return "\n".join(lines)


def data_dir_setting() -> Path:
    """DATA_DIR alone (the report, built wherever the run's candles are): no other variable
    has to be valid for it."""
    return load_lenient()[0].data_dir


def replace_environment(env: dict[str, str]) -> None:
    """The environment a warm worker runs with, handed over once the run is claimed
    (supervisor/warm.py); settings stays the one module that touches os.environ."""
    import os

    os.environ.clear()
    os.environ.update(env)
