# One image for every Threadline process: `threadline collector`, `threadline dashboard`, `threadline demo`.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY sdk ./sdk
COPY src ./src
COPY examples ./examples
RUN pip install --no-cache-dir ./sdk . \
    && useradd --system --home /app threadline \
    && mkdir -p /app/.threadline && chown threadline /app/.threadline
USER threadline

# The example workflows are package data: the collector's default without THREADLINE_WORKFLOWS.
ENV PYTHONUNBUFFERED=1
EXPOSE 4318 8050
ENTRYPOINT ["threadline"]
CMD ["collector", "--host", "0.0.0.0"]
