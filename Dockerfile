# panicwatch container image, built without network access.
#
# Python packages come from a wheels/ directory in the build context, made beforehand on a
# machine that can reach a package index, with the same Python minor version as BASE:
#
#   python3 -m pip wheel --wheel-dir wheels . 'setuptools>=68' wheel
#   docker build -t panicwatch .        # buildah/podman: add --format docker (HEALTHCHECK)
#
# BASE is any Debian-like image with python3 and the venv module: python:3.11-slim, or a
# plain Debian with python3 and python3-venv. Both stages must use the same BASE: the venv
# built in the first is copied to the second and points at that base's interpreter.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# Only what the wheel build reads; the rest of the repository stays out of the layers.
COPY wheels/ /wheels/
COPY pyproject.toml README.md /src/
COPY exporter/ /src/exporter/
# --no-index everywhere: a missing wheel fails the build here instead of reaching out to
# PyPI. The wheel's build backend (setuptools>=68, from pyproject.toml) comes from /wheels
# too, through pip's isolated build environment, which inherits --no-index/--find-links.
RUN python3 -m venv /opt/panicwatch \
 && /opt/panicwatch/bin/pip wheel --no-index --find-links /wheels --no-deps \
        --wheel-dir /dist /src \
 && /opt/panicwatch/bin/pip install --no-index --find-links /wheels /dist/panicwatch-*.whl \
 && /opt/panicwatch/bin/pip uninstall --yes pip setuptools \
 && /opt/panicwatch/bin/panicwatch --version

FROM ${BASE}
# A fixed UID, so that host file ownership, PodSecurity runAsNonRoot and audit logs can
# name it; no home directory and no shell, nothing logs in as it.
RUN useradd --system --uid 10110 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin panicwatch
COPY --from=build /opt/panicwatch /opt/panicwatch
# Bytecode was compiled at install time; the root filesystem is meant to be read-only.
ENV PATH=/opt/panicwatch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Numeric, so that Kubernetes' runAsNonRoot can check it without a passwd lookup. This
# user sees what any local user sees; the collectors that need more (see the README's
# Deployment section) need the container run as UID 0 with a few capabilities added:
# Docker and Kubernetes hand added capabilities only to UID 0 (no ambient capabilities).
USER 10110:10110
EXPOSE 10110
# No curl in the image: the interpreter is already there. The port follows
# PANICWATCH_WEB_LISTEN_ADDRESS when the listen address is set through the environment.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/opt/panicwatch/bin/python3", "-c", "import os, urllib.request; port = os.environ.get('PANICWATCH_WEB_LISTEN_ADDRESS', ':10110').rpartition(':')[2]; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % port, timeout=4)"]
ENTRYPOINT ["panicwatch"]
CMD ["serve"]
