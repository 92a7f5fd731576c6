# One image for the API (default command) and the worker (`python -m worker`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY devstack ./devstack
COPY mail ./mail
COPY web ./web
COPY config.py profiles.py worker.py observability.py maintenance.py ./
# Bytecode for /app too: the workflow sandbox imports the workflow module once per ticket
# it loads, and without a .pyc (PYTHONDONTWRITEBYTECODE, read-only tree) compiles it each time.
RUN pip install . psycopg[binary] \
    && python -m compileall -q /app \
    && useradd --system --uid 10001 --home-dir /app tramita \
    && mkdir -p /data/contents && chown tramita /data/contents

USER tramita
EXPOSE 8000 9464 2525
ENV TRAMITA_API_HOST=0.0.0.0 \
    TRAMITA_API_PORT=8000 \
    TRAMITA_LOG_FORMAT=json
CMD ["python", "-m", "api"]
