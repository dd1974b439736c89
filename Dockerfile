# repricerd production image.
#
#   docker build -t repricerd .
#   docker run --read-only --tmpfs /tmp -v repricerd-data:/data \
#     --cap-drop ALL --security-opt no-new-privileges -p 8080:8080 \
#     -v "$PWD/prod.yaml:/app/config/repricerd.yaml:ro" --env-file repricerd.env repricerd
#
# Listening address: REPRICERD_HOST=0.0.0.0 (set below) overrides `server.host` of whatever
# config is mounted, so a published port reaches the daemon. A deployment mounts its own config
# over /app/config/repricerd.yaml (or points REPRICERD_CONFIG / `-c` elsewhere). Credentials come
# from the environment (${ENV_VAR} references in the YAML), never from the image.

# -- builder: install the package and its dependencies into a self-contained venv -------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
WORKDIR /src
# The dependencies first, exactly as pinned in the lock (the tested set, `make lock`): this layer
# is rebuilt only when the lock changes, not on every source edit.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install -r requirements.lock
# pyproject names README.md as the long description, so the build needs it.
COPY pyproject.toml README.md ./
COPY domain/ domain/
COPY daemon/ daemon/
COPY connectors/ connectors/
COPY strategies/ strategies/
COPY inventory/ inventory/
# A regular (non-editable) install: the venv is copied alone into the final stage. pip compiles
# the .pyc files here, so nothing needs to write bytecode under a read-only root filesystem.
# --no-deps: nothing beyond the lock gets in; pip check fails the build if the lock no longer
# satisfies pyproject.toml.
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/repricerd --help > /dev/null

# -- runtime: the venv, the config, a data volume, no build tools, not root --------------------
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    REPRICERD_DATABASE=sqlite:////data/repricerd.db \
    REPRICERD_HOST=0.0.0.0

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The demo config's relative paths (config/demo-catalog.csv) resolve against WORKDIR /app.
COPY config/ /app/config/

# /data holds the SQLite database and its -wal/-shm files: the only writable path besides /tmp.
# Owned by the runtime UID so a fresh named volume inherits the ownership.
RUN mkdir -p /data && chown 10001:10001 /data
VOLUME ["/data"]

# Numeric UID:GID, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd entry.
USER 10001:10001

EXPOSE 8080

# slim has no curl: probe liveness with the interpreter we already ship (non-2xx raises -> exit 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# Exec form: repricerd is PID 1 and receives SIGTERM itself (docker stop), then drains and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["repricerd", "run"]
CMD ["-c", "/app/config/repricerd.yaml"]
