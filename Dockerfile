# One image for both `daemon` and `demo` (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /src

# Rebuild the Lua manifest in the image so it always matches lua/
# (build.py is standard-library only), then install the package.
COPY lua/ lua/
COPY python/ python/
RUN python lua/build.py --out python/homing/manifest.json \
 && pip install --no-cache-dir './python[hiredis]'

# The demo's web UI; the daemon listens on nothing.
EXPOSE 8080
CMD ["homing", "daemon", "--redis-url", "redis://redis:6379/0"]
