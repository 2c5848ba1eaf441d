# The scorer as a container: `docker build -t streaming-scorer .`, then `scorer serve` by default.
# infra/docker-compose.yml runs it next to Apache Kafka, Prometheus and Grafana.

# The wheel, with the hot path's helpers compiled (native/, Rust): only this stage has a
# compiler; the image the scorer runs in gets the wheel alone.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
ENV PATH=/root/.cargo/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY native ./native
COPY schemas ./schemas
COPY models ./models
COPY streams ./streams
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SCORER_HOME=/app \
    SCORER_REGISTRY=/registry \
    SCORER_TOPICS_FILE=/app/infra/topics.yaml \
    SCORER_METRICS_PORT=9464

COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

# SCORER_HOME holds what the installed package reads from a checkout: the topic specs.
WORKDIR /app
COPY infra/topics.yaml infra/topics.yaml
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin scorer \
    && mkdir -p /registry /app/var \
    && chown -R scorer:scorer /registry /app/var
USER scorer

VOLUME ["/registry"]
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SCORER_METRICS_PORT', '9464'), timeout=2)"

ENTRYPOINT ["scorer"]
CMD ["serve"]
