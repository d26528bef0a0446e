# syntax=docker/dockerfile:1
# monitor: news feed alerts. Build: docker build -t monitor .
# Run:   docker run -d -v monitor-data:/data -v "$PWD/config.yaml:/config/config.yaml:ro" monitor

# ---- builder: install monitor and its dependencies into a self-contained venv ----
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/monitor
WORKDIR /src
# README.md is the package's long description (pyproject `readme`), so it is needed to build.
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN /opt/monitor/bin/pip install ".[postgres]"

# ---- runtime: the venv, the default config, a non-root user ----
FROM python:3.11-slim

ENV PATH=/opt/monitor/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MONITOR_CONFIG=/config/config.yaml \
    MONITOR_DATABASE_URL=sqlite:////data/monitor.db \
    MONITOR_HTTP_LISTEN=0.0.0.0:8787

RUN groupadd --system --gid 10001 monitor \
 && useradd --system --uid 10001 --gid monitor --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin monitor \
 && mkdir -p /data /config \
 && chown monitor:monitor /data

COPY --from=builder /opt/monitor /opt/monitor
# The shipped config (console channel, public feeds) as a default; mount your own over it.
COPY config.yaml /config/config.yaml

USER 10001:10001
WORKDIR /data
VOLUME /data

# The status server (MONITOR_HTTP_LISTEN): /healthz for the probe below, /metrics for Prometheus.
EXPOSE 8787
# `monitor healthcheck` asks the daemon's /healthz: healthy while the scheduler ticks and the
# database answers. It needs no channel secrets.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["monitor", "healthcheck"]

# Exec form, so SIGTERM from `docker stop` reaches monitor, which shuts down gracefully.
# It waits up to `shutdown_grace` (30s) for polls in progress, so give it more than that:
# docker stop -t 45 / stop_grace_period: 45s (Docker's default is 10s).
ENTRYPOINT ["monitor"]
CMD ["run"]
