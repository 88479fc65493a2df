# netpol-exporter container image.
#   docker build -t netpol-exporter:0.1.0 .
# Two stages: the build stage turns the package and its dependencies into wheels (all of them ship
# manylinux wheels for CPython 3.11, so no compiler is needed); the runtime stage installs only the
# wheels, with no build tooling, and runs as an unprivileged numeric user.
# Pin the digest too where your registry policy asks for it:
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm  ->  FROM python:3.11.14-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-index --find-links=/tmp/wheels netpol-exporter \
    && rm -rf /tmp/wheels
# uid/gid 10215 (the default port, easy to recognise in `ps`); no home, no shell, no files owned.
USER 10215:10215
EXPOSE 10215
ENTRYPOINT ["netpol-exporter"]
CMD ["run", "--listen=0.0.0.0:10215"]
