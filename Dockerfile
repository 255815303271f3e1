# One image for the gateway and every connector; compose.yaml picks the command.
# Nothing is fetched at run time: wheels are installed at build time, and the health check
# (below) uses grpcio-health-checking, a declared dependency, not a downloaded probe binary.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 pgw \
 && useradd --system --uid 10001 --gid pgw --home-dir /srv/pgw --no-create-home \
      --shell /usr/sbin/nologin pgw

# Build from a throw-away copy of the sources; only the installed package stays. The postgres
# extra (psycopg) lets several gateway replicas share one audit store (compose profile).
COPY pyproject.toml README.md /tmp/pgw-src/
COPY gateway/ /tmp/pgw-src/gateway/
COPY connectors/ /tmp/pgw-src/connectors/
RUN pip install --no-cache-dir "/tmp/pgw-src[postgres]" && rm -rf /tmp/pgw-src

WORKDIR /srv/pgw
# Agreements are root-owned and read-only to the service: it cannot widen its own policy.
COPY policies/ /srv/pgw/policies/
# Mount point for the per-service volume (databases, audit store, witness state); a fresh
# named volume inherits this ownership.
RUN install -d -o pgw -g pgw -m 0750 /srv/pgw/data

USER 10001:10001
EXPOSE 50051
# grpc.health.v1 Check over plaintext, as the servers listen today; a connector sets
# PGW_HEALTH_TARGET to its own [connectors.NAME] address. Revisit when TLS/mTLS lands.
ENV PGW_HEALTH_TARGET=127.0.0.1:50051
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["python", "-c", \
  "import grpc, os, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; ch = grpc.insecure_channel(os.environ['PGW_HEALTH_TARGET']); r = g.HealthStub(ch).Check(h.HealthCheckRequest(), timeout=4); sys.exit(r.status != h.HealthCheckResponse.SERVING)"]
CMD ["pgw", "gateway", "serve", "--config", "/srv/pgw/pgw.toml"]
