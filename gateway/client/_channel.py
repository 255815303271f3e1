"""Channels to the gateway: plaintext, or TLS verified against the deployment's CA."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc


def open_channel(address: str, *, ca: bytes | None = None,
                 options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A grpc.aio channel; with ``ca`` (PEM) the gateway's certificate must chain to it."""
    if ca is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca),
                                   options=list(options))
