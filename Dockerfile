# One image for every program: ingest-gateway (the default command), ingest-sink, ingest-importer,
# ingest-topics, ingest-auth. Build: docker build -t ingest-gateway . (helm/ingest-gateway runs it).
# Every dependency ships as a binary wheel: no compiler in either stage.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY consumers consumers
COPY ingest_core ingest_core
RUN /opt/venv/bin/pip install . && /opt/venv/bin/pip uninstall -y pip

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin ingest
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY schemas schemas
COPY topics.yaml topics.yaml
# SCHEMAS_DIR: the packages are installed apart from the tree, so the schemas are found here.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SCHEMAS_DIR=/app/schemas \
    TOPICS_FILE=/app/topics.yaml \
    GATEWAY_HOST=0.0.0.0 \
    SINK_HOST=0.0.0.0 \
    IMPORTER_HOST=0.0.0.0 \
    UPLOAD_DIR=/data/uploads \
    STORE_URL=sqlite:////data/ingest.db
USER 10001:10001
EXPOSE 8080 9101 9102
CMD ["ingest-gateway"]
