# The inferwatch pipeline image used by docker-compose.yml's collector, audit and detect roles:
#   docker build -t inferwatch:0.1.0 .
#   docker run --rm inferwatch:0.1.0 inferwatch --help
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/inferwatch
COPY pyproject.toml README.md ./
COPY inferwatch ./inferwatch
COPY collectors ./collectors
COPY detectors ./detectors
COPY sinks ./sinks
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/inferwatch --create-home inferwatch \
    && mkdir -p /etc/inferwatch \
    && chown inferwatch /var/lib/inferwatch

USER inferwatch
WORKDIR /var/lib/inferwatch
EXPOSE 8080 9108
CMD ["inferwatch", "run", "--role", "all", "--config", "/etc/inferwatch/inferwatch.yaml"]
