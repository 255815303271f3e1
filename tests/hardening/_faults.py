"""Fault doubles that run as real processes and sockets (registered as ``pgw_hardening_faults``).

* :class:`FaultConnector` starts ``python _faults.py CONFIG PARTNER MODE [ARG]`` as a subprocess:
  the real connector (``start_partner``: real DataSource, spec verification, agreements) with
  one fault in ``Fetch`` and ``FetchBatch`` alike. Modes: ``slow SECONDS`` (answers correctly
  after a pause), ``hang`` (never answers), ``garbage`` (answers bytes that are not a
  FetchResponse; it serves no FetchBatch, so the gateway falls back to Fetch), ``oversized MIB``
  (a correct answer padded with an undeclared field of MIB mebibytes, sent with the send limit
  lifted). Like ``pgw connector serve`` it prints ``listening on port N``.
* :class:`TcpProxy`: a TCP forwarder on the test's event loop, so a dependency (PostgreSQL)
  can be made unreachable and reachable again without touching the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GARBAGE = b"\x0a\xff\xff\xff\xff\x0f\x01not a FetchResponse"  # a length far past the end


class FaultConnector:
    """A connector subprocess with one fault; ``address`` once started; ``kill()`` = SIGKILL."""

    def __init__(self, config: Path, partner: str, mode: str, arg: str = "",
                 log_dir: Path | None = None) -> None:
        log = (log_dir or config.parent) / f"fault-{partner}-{mode}-{os.getpid()}-{id(self)}.log"
        self.log = log
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, str(config), partner, mode, arg],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                env={**os.environ, "PGW_LOG_TRACEBACKS": "1"})
        self.port = read_port(self.proc, f"fault connector {partner} ({mode})", 60, log)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def read_port(proc: subprocess.Popen[bytes], what: str, timeout: float, log: Path) -> int:
    """Wait for ``listening on port N`` on the child's stdout."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            break
        line = proc.stdout.readline().decode(errors="replace")
        if not line:
            break
        if m := re.fullmatch(r"listening on port (\d+)\s*", line):
            return int(m.group(1))
    proc.kill()
    proc.wait()
    raise AssertionError(f"{what} did not start within {timeout} s (exit {proc.returncode}); "
                         f"log {log}:\n{log.read_text(errors='replace')[-3000:]}")


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``target`` on ``loop``; :meth:`cut` refuses and drops."""

    def __init__(self, loop: Any, target: tuple[str, int]) -> None:
        self._loop, self._target = loop, target
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        loop.run(self._listen())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    def cut(self) -> None:
        """Drop every connection and stop listening (new connections are refused)."""
        self._loop.run(self._cut())

    def restore(self) -> None:
        self._loop.run(self._listen())

    def close(self) -> None:
        self.cut()


# -- the subprocess --------------------------------------------------------------------------

def _main(config: str, partner: str, mode: str, arg: str) -> None:
    import grpc

    import connectors.sdk._server as sdk_server
    import gateway.server
    from gateway.config import load_config
    from gateway.logs import configure_logging
    from gateway.pb.pgw.v1 import common_pb2, connector_pb2, connector_pb2_grpc

    base = sdk_server.ConnectorService

    async def pause() -> None:
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "slow":
            await asyncio.sleep(float(arg))

    def pad(answer: Any) -> None:
        if mode == "oversized" and answer.rows:
            answer.rows[0].values.add(
                partner=partner, field="padding", transform="plain",
                value=common_pb2.Value(string_value="x" * (int(arg) << 20)))

    class Faulty(base):  # type: ignore[misc, valid-type]
        """The same fault whether a spec comes alone (Fetch) or coalesced (FetchBatch)."""

        async def Fetch(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
            await pause()
            answer = await super().Fetch(request, context)
            pad(answer)
            return answer

        async def FetchBatch(self, request: Any, context: Any) -> Any:  # noqa: N802
            await pause()
            answer = await super().FetchBatch(request, context)
            for outcome in answer.outcomes:
                if outcome.HasField("answer"):
                    pad(outcome.answer)
            return answer

    gateway.server.ConnectorService = Faulty  # type: ignore[misc]
    if mode == "oversized":
        sdk_server.MAX_MESSAGE = 256 << 20   # the gateway's receive limit must be what stops it
    if mode == "garbage":
        def add(servicer: Any, server: Any) -> None:
            m = connector_pb2
            handlers = {
                "Describe": grpc.unary_unary_rpc_method_handler(
                    servicer.Describe, request_deserializer=m.DescribeRequest.FromString,
                    response_serializer=m.DescribeResponse.SerializeToString),
                "Fetch": grpc.unary_unary_rpc_method_handler(
                    servicer.Fetch, request_deserializer=m.FetchRequest.FromString,
                    response_serializer=lambda _answer: GARBAGE),
                "Cosign": grpc.unary_unary_rpc_method_handler(
                    servicer.Cosign, request_deserializer=m.CosignRequest.FromString,
                    response_serializer=m.CosignResponse.SerializeToString),
            }
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
                "pgw.v1.ConnectorService", handlers),))

        connector_pb2_grpc.add_ConnectorServiceServicer_to_server = add

    async def serve() -> None:
        running = await gateway.server.start_partner(load_config(Path(config)), partner,
                                                     listen="127.0.0.1:0")
        print(f"listening on port {running.port}", flush=True)
        await gateway.server.serve_forever(running)

    configure_logging(service=f"fault-connector-{partner}")
    asyncio.run(serve())


if __name__ == "__main__":
    _main(*sys.argv[1:5])
