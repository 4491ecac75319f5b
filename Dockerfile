# The strategy runner image: what `docker compose run strategy` and ECS RunTask launch.
#
# Base image pinned to a patch release. For production builds also pin its digest
# (`docker buildx imagetools inspect python:3.11.14-slim-bookworm` prints it) by passing
#   --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>
# Fargate runs x86_64 only: build with --platform linux/amd64 on other machines.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: a virtual environment from the locked wheels -------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements/ /tmp/requirements/
# Exact versions, no resolution: wheels only (sdnotify is pure Python and ships no
# wheel), so no compiler is needed in any stage. No byte-code at install: the warm-up run
# below compiles exactly what the runtime imports, and nothing else.
RUN pip install --no-cache-dir --no-compile --no-deps --only-binary=:all: --no-binary=sdnotify \
        -r /tmp/requirements/image.txt
COPY pyproject.toml README.md /src/
COPY src/ /src/src/
# The project's own wheel, built with the pinned backend (requirements/build.txt) in a
# throwaway environment so setuptools stays out of the runtime.
RUN python -m venv /opt/build-tools \
    && /opt/build-tools/bin/pip install --no-cache-dir -r /tmp/requirements/build.txt \
    && /opt/build-tools/bin/pip wheel --no-cache-dir --no-build-isolation --no-deps -w /tmp/wheels /src \
    && pip install --no-cache-dir --no-compile --no-deps /tmp/wheels/*.whl \
    && pip check
# What the runtime never reads or loads: test suites, C/C++ headers, Cython sources and stubs,
# Arrow Flight (its RPC layer: feather and parquet do not load it), the API models of AWS
# services the runner does not call (28 MB of botocore's 443; the rest fail naming the service), pip,
# and the debug symbols of the wheels' own extension modules. The libraries auditwheel grafted
# into *.libs/ are left as they are (patchelf'ed files do not survive strip reliably).
# The AWS services whose clients the runner (status, results, inputs, callbacks) and the MLflow
# client create, and those boto3's credential providers call.
ARG AWS_SERVICES="dynamodb s3 stepfunctions sts sso sso-oidc"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update && apt-get install -y --no-install-recommends binutils=2.40-2 \
    && SITE=/opt/venv/lib/python3.11/site-packages \
    && find "$SITE" -depth -type d \( -name tests -o -name include \) -prune -exec rm -rf {} + \
    && find "$SITE" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pyi' \) -delete \
    && rm -f "$SITE"/pyarrow/*flight* \
    && rm -rf "$SITE"/ccxt/test \
    && for model in "$SITE"/botocore/data/*/; do \
         case " $AWS_SERVICES " in *" $(basename "$model") "*) ;; *) rm -rf "$model" ;; esac; done \
    && find "$SITE" -path '*.libs' -prune -o -type f -name '*.so*' -print0 | xargs -0 strip --strip-unneeded \
    && pip uninstall --yes --quiet pip \
    && rm -rf /var/lib/apt/lists/*
# Warm-up: one short tracked backtest on the bundled data writes the byte-code of every module
# a run imports (supervisor, worker, Freqtrade, the MLflow client), so the image starts as fast
# as a compiled install while carrying no byte-code it never uses. It also proves the
# environment runs before the image is ever tagged.
COPY strategies/ /warm/strategies/
COPY configs/ /warm/configs/
COPY data/ /warm/data/
WORKDIR /warm
RUN RUN_ID=image-warm-up PAIRS=BTC/USDT TIMERANGE=20241101-20241108 LOG_FORMAT=json \
       MLFLOW_TRACKING_URI=sqlite:////warm/mlflow.db strategy-runner backtest >/warm/warm-up.log 2>&1 \
       || { tail -50 /warm/warm-up.log; exit 1; } \
    && python -c "import boto3; [boto3.client(s, region_name='us-east-1') for s in ('dynamodb', 's3', 'stepfunctions')]; import pyarrow.parquet" \
    && rm -rf /warm

# --- runtime ------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG IMAGE_VERSION=dev
ARG IMAGE_REVISION=unknown
LABEL org.opencontainers.image.title="strategy-runner" \
      org.opencontainers.image.description="Freqtrade backtest runner that owns its run's lifecycle" \
      org.opencontainers.image.version="${IMAGE_VERSION}" \
      org.opencontainers.image.revision="${IMAGE_REVISION}"

# tini as PID 1 forwards SIGTERM (Fargate Spot's notice) to the runner and reaps
# children, even where ECS initProcessEnabled / compose `init` are not set.
# The working directory belongs to the runner: results go to runs/, DATA_S3_PATH downloads
# into data/, the embedded MLflow store (mlflow.db, mlruns/) lands in /app. Code, strategies
# and configs stay root-owned, read-only to the runner.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --user-group runner \
    && install -d -o runner -g runner /app /app/runs

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY strategies/ strategies/
COPY configs/ configs/
COPY --chown=runner:runner data/ data/

# IMAGE_VERSION / IMAGE_REVISION are read by the runner's settings and recorded with
# every run, so a result names the image that produced it.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json \
    IMAGE_VERSION=${IMAGE_VERSION} \
    IMAGE_REVISION=${IMAGE_REVISION}

USER 10001:10001
# -s: under ECS initProcessEnabled / compose `init: true` tini is not PID 1; as a subreaper it
# still reaps and forwards signals, without warning about it on every start.
# Relative defaults (data, strategies, configs, runs) resolve against WORKDIR /app.
ENTRYPOINT ["tini", "-s", "--", "strategy-runner"]
CMD ["backtest"]
