"""The admin endpoint (``[gateway] admin_listen``): Prometheus ``/metrics`` and gRPC reflection.

Both listen on the admin host only, never on the public port: ``/metrics`` over a minimal
HTTP/1.0 server on ``admin_listen`` itself, and a gRPC server that holds nothing but the
reflection service (listing the gateway's public services) on the same host, one port above
(``HOST:0`` gives both an ephemeral port; the chosen ports are logged and kept here).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import grpc
from grpc_reflection.v1alpha import reflection

from gateway.errors import ConfigError
from gateway.logs import get_logger
from gateway.metrics import CONTENT_TYPE, REGISTRY, GaugeFunc, Registry

log = get_logger("pgw.ops")
MAX_REQUEST_HEAD = 8192
READ_TIMEOUT_S = 5.0


def split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"[gateway] admin_listen: got {address!r}, want HOST:PORT")
    return host.strip("[]"), int(port)


class AdminEndpoint:
    """A started admin endpoint; build it with :meth:`start`, stop it with :meth:`aclose`."""

    def __init__(self, http: asyncio.Server, grpc_server: grpc.aio.Server, host: str,
                 metrics_port: int, grpc_port: int, registry: Registry,
                 gauges: Sequence[GaugeFunc]) -> None:
        self._http, self._grpc = http, grpc_server
        self.host, self.metrics_port, self.grpc_port = host, metrics_port, grpc_port
        self._registry, self._gauges = registry, tuple(gauges)

    @classmethod
    async def start(cls, address: str, services: Sequence[str], *,
                    gauges: Sequence[GaugeFunc] = (),
                    registry: Registry = REGISTRY) -> AdminEndpoint:
        host, port = split_host_port(address)
        endpoint: AdminEndpoint | None = None

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert endpoint is not None
            await endpoint._serve(reader, writer)

        http = await asyncio.start_server(handle, host, port)
        metrics_port = http.sockets[0].getsockname()[1]
        server = grpc.aio.server()
        names = (*services, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
        try:
            grpc_port = server.add_insecure_port(f"{_bracket(host)}:{port + 1 if port else 0}")
            await server.start()
        except BaseException:
            http.close()
            await http.wait_closed()
            raise
        endpoint = cls(http, server, host, metrics_port, grpc_port, registry, gauges)
        log.info("admin_started", host=host, metrics_port=metrics_port, grpc_port=grpc_port)
        return endpoint

    def render(self) -> str:
        return self._registry.render(self._gauges)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            status, body, ctype = self._answer(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, body, ctype = "400 Bad Request", b"bad request\n", "text/plain"
        except Exception as exc:  # noqa: BLE001 - a scrape must never take the gateway down
            log.error("metrics_render_failed", exc_type=type(exc).__name__)
            status, body, ctype = "500 Internal Server Error", b"error\n", "text/plain"
        writer.write(f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                     + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    def _answer(self, head: bytes) -> tuple[str, bytes, str]:
        if len(head) > MAX_REQUEST_HEAD:
            return "431 Request Header Fields Too Large", b"too large\n", "text/plain"
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3:
            return "400 Bad Request", b"bad request\n", "text/plain"
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if target != b"/metrics":
            return "404 Not Found", b"not found; try /metrics\n", "text/plain"
        if method not in (b"GET", b"HEAD"):
            return "405 Method Not Allowed", b"GET only\n", "text/plain"
        body = self.render().encode()
        return "200 OK", b"" if method == b"HEAD" else body, CONTENT_TYPE

    async def aclose(self) -> None:
        self._http.close()
        await self._http.wait_closed()
        await self._grpc.stop(0)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
