# Switchboard with the demo app as a container image (docs/deployment.md):
#   docker build -t switchboard .
#   docker run -p 8080:8080 -v switchboard-data:/data switchboard
# Your own app: replace deploy/container.json (and web/, components/) or mount a config and run it with
# --config. The data directory (users, keys, channel history) is the volume /data.

FROM node:20-bookworm-slim AS web
WORKDIR /app/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim AS build
# A C compiler for the WebSocket framing extension (router/_wsframe.c); only this stage has it.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/switchboard
COPY pyproject.toml setup.py README.md /src/
COPY router /src/router
COPY components /src/components
RUN /opt/switchboard/bin/pip install --no-cache-dir /src

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin switchboard \
    && mkdir /data && chown switchboard:switchboard /data && chmod 0700 /data
COPY --from=build /opt/switchboard /opt/switchboard
COPY config /app/config
COPY deploy/container.json /app/deploy/container.json
COPY web /app/web
COPY --from=web /app/web/node_modules /app/web/node_modules
ENV PATH=/opt/switchboard/bin:$PATH PYTHONUNBUFFERED=1
USER switchboard
VOLUME /data
EXPOSE 8080
# /health on the endpoints' own loopback port (the config's "operations"; no curl in the slim image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/health', timeout=4)"]
# `docker stop` sends SIGTERM: `switchboard run` stops Crossbar within 10 s; give it that (docker stop -t 30).
STOPSIGNAL SIGTERM
CMD ["switchboard", "run", "--config", "/app/deploy/container.json", "--data-dir", "/data"]
