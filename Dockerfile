# Ricochet's service image: `docker build -t ricochet .` then
# `docker run -p 8025:8025 ricochet` (see README.md). Settings come from RICOCHET_* variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin ricochet

WORKDIR /app
COPY . /app
RUN pip install . \
    && mkdir -p /app/var \
    && chown ricochet:ricochet /app/var

USER ricochet
# Listen on every interface inside the container; the embedded SQLite database lives in /app/var
# (mount a volume there, or set RICOCHET_DATABASE_URL to a PostgreSQL URL).
ENV RICOCHET_SERVER_HOST=0.0.0.0 \
    RICOCHET_SERVER_PORT=8025
VOLUME ["/app/var"]
EXPOSE 8025

# Apply the database migrations, then serve: a fresh volume gets its tables on first start.
# Other commands: docker run ricochet python app.py --help
CMD ["sh", "-c", "python app.py db upgrade && exec python app.py serve"]
