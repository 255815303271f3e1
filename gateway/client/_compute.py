"""``ComputeClient``: encrypted compute from the requester's side; the keys never leave it.

The client makes (or is given) CKKS keys, sends only the public material, streams the subjects,
and decrypts the result ciphertexts locally. What it learns: the scores (or the aggregate), and
per partner which subjects that partner holds (a missing input is counted as 0, so the
requester must know); never an input value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from connectors.sdk._compute import unpack_presence
from gateway.client._channel import open_channel
from gateway.packed_ids import WIDTH, pack_ids
from gateway.pb.pgw.v1 import common_pb2, compute_pb2, compute_pb2_grpc
from gateway.privacy import HeKeys, decrypt_vector

MAX_MESSAGE = 16 * 1024 * 1024
#: Subjects per request message (about 1.3 MiB each).
SUBJECT_CHUNK = 65536


@dataclass(frozen=True)
class ScoreResult:
    """Decrypted scores, in subject order; ``present[partner][i]``: that partner held subject i."""

    request_id: str
    model: str
    model_version: int
    scores: list[float]
    present: dict[str, list[bool]]
    receipt: common_pb2.AuditReceipt

    def complete(self, i: int) -> bool:
        """Whether every partner supplied subject i's input (else it counted as 0)."""
        return all(found[i] for found in self.present.values())

    def missing(self, i: int) -> list[str]:
        return [p for p, found in self.present.items() if not found[i]]


@dataclass(frozen=True)
class AggregateResult:
    request_id: str
    op: str
    value: float
    #: The cohort size, when the agreement grants ``count`` (else None).
    cohort_count: int | None
    receipt: common_pb2.AuditReceipt


class ComputeClient:
    """One channel to the gateway's ComputeService; use as an async context manager.

    ``max_message`` is the channel's gRPC message ceiling. A result's summary carries the
    audit receipt; past 1,024 subjects its entry names them by a digest of their subject set
    (kept beside the log), so the receipt stays about a kilobyte at any size and the default
    16 MiB is enough (it used to be exceeded from about 2^18 subjects on).
    """

    def __init__(self, address: str, token: str, *, keys: HeKeys | None = None,
                 timeout_s: float = 900.0, ca: bytes | None = None,
                 max_message: int = MAX_MESSAGE) -> None:
        self._channel = open_channel(
            address, ca=ca, options=[("grpc.max_receive_message_length", max_message),
                                     ("grpc.max_send_message_length", max_message)])
        self._stub = compute_pb2_grpc.ComputeServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout_s
        self._keys = keys

    @property
    def keys(self) -> HeKeys:
        """The requester's CKKS keys (made on first use; the secret stays in this process)."""
        if self._keys is None:
            self._keys = HeKeys.ckks()
        return self._keys

    async def __aenter__(self) -> ComputeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, header: compute_pb2.ComputeHeader, subjects: Sequence[str] = ()
                    ) -> tuple[compute_pb2.ComputeSummary, list[float]]:
        """The summary and the decrypted values; each ciphertext is decrypted as it arrives,
        while the next ones are still on the wire."""
        packed = pack_ids(subjects)  # ValueError naming a malformed id's position
        step = SUBJECT_CHUNK * WIDTH

        async def requests() -> AsyncIterator[compute_pb2.ComputeRequest]:
            yield compute_pb2.ComputeRequest(header=header)
            for i in range(0, len(packed), step):
                yield compute_pb2.ComputeRequest(subjects=compute_pb2.SubjectChunk(
                    ids=packed[i:i + step]))

        call = self._stub.Compute(requests(), metadata=self._metadata, timeout=self._timeout)
        summary: compute_pb2.ComputeSummary | None = None
        values: list[float] = []
        received = 0
        async for message in call:
            if message.HasField("summary"):
                summary = message.summary
            else:
                if message.chunk.index != received:
                    raise ValueError("gateway answered ciphertexts out of order")
                values.extend(decrypt_vector(self.keys, [message.chunk.ciphertext]))
                received += 1
        if summary is None or received != summary.ciphertexts:
            raise ValueError("gateway answered an incomplete result")
        return summary, values

    async def score(self, model: str, subjects: Sequence[str], *,
                    purpose: str = "loan-risk-scoring") -> ScoreResult:
        """Scores of ``subjects`` under the approved ``model``, decrypted here."""
        keys = self.keys
        header = compute_pb2.ComputeHeader(purpose=purpose, public_context=keys.public_material(),
                                           linear=compute_pb2.LinearOp(model=model),
                                           subject_count=len(subjects))
        summary, values = await self._call(header, subjects)
        n = len(subjects)
        if summary.count != n or len(values) < n:
            raise ValueError(f"gateway answered {summary.count} scores, want {n}")
        scores = values[:n]
        present = {p.partner: unpack_presence(p.found, n) for p in summary.presence}
        return ScoreResult(summary.request_id, summary.model, summary.model_version, scores,
                           present, summary.receipt)

    async def aggregate(self, partner: str, field: str, op: str, attribute: str, value: str, *,
                        purpose: str = "statistics") -> AggregateResult:
        """``op`` (sum, mean, count) of ``partner.field`` over the cohort ``attribute=value``."""
        keys = self.keys
        header = compute_pb2.ComputeHeader(
            purpose=purpose, public_context=keys.public_material(),
            aggregate=compute_pb2.AggregateOp(partner=partner, field=field, op=op,
                                              cohort_attribute=attribute, cohort_value=value))
        summary, values = await self._call(header)
        if not values:
            raise ValueError("gateway answered no result")
        result = values[0]
        return AggregateResult(summary.request_id, op, result,
                               summary.cohort_count or None, summary.receipt)
