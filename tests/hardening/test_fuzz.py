"""Bad input at scale (issue 6, item 4): hypothesis over every RPC's requests and the loader.

Requests are drawn from the protobuf descriptors themselves (every field of every request
message, nested messages, repeated fields, enums including unknown values), with strings mixed
from random text and values that reach deep code paths (real purposes, partners, fields,
agreement ids, valid and broken person ids, SQL-shaped text). They go through real gRPC to the
running gateway and connectors with no token, a garbage token or a valid token of any role.
Whatever comes back must not be ``UNKNOWN`` or ``INTERNAL`` (a crash), and an
``INVALID_ARGUMENT`` must name the offending fields (google.rpc.BadRequest).

The agreement loader gets random YAML documents, random values spliced into the shipped
agreements, and byte-level mutations of their text: ``lint_policies`` must report problems
(file, rule, reason) and never raise.

CI budget: ``PGW_FUZZ_EXAMPLES`` examples per target (default 40; the whole module stays under
~60 s). A longer run: ``PGW_FUZZ_EXAMPLES=2000 pytest tests/hardening/test_fuzz.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import descriptor as d
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgw_it_harness import LoopThread, RawData, Stack, isolated_cfg, start_stack

from gateway.config import Config
from gateway.pb.pgw.v1 import (
    admin_pb2,
    audit_pb2,
    compute_pb2,
    connector_pb2,
    gateway_pb2,
    join_pb2,
)
from gateway.policy import lint_policies
from gateway.status import bad_request_fields

EXAMPLES = int(os.environ.get("PGW_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
CRASH = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
SHIPPED = Path(__file__).resolve().parents[2] / "policies"
GATEWAY_SERVICES = [gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"],
                    audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
                    admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
                    compute_pb2.DESCRIPTOR.services_by_name["ComputeService"],
                    join_pb2.DESCRIPTOR.services_by_name["JoinService"]]
CONNECTOR_SERVICES = [connector_pb2.DESCRIPTOR.services_by_name["ConnectorService"],
                      compute_pb2.DESCRIPTOR.services_by_name["PartnerComputeService"],
                      join_pb2.DESCRIPTOR.services_by_name["PartnerJoinService"]]
ROLES = [None, "garbage", ("requester",), ("auditor",), ("policy-admin",), ("integrator",),
         ("requester", "auditor", "policy-admin")]
WORDS = ["loan-eligibility", "withdrawal-review", "fraud-cross-check", "housing-statistics",
         "social-security", "education", "bank", "highest_degree", "income_avg_12m",
         "contribution_months", "card_number", "name", "employer_code", "hpf-loan-ss",
         "hpf-loan-bank", "hpf-changzhou", "plain", "mask", "pseudonym", "encrypted",
         "' OR '1'='1", "x\"; DROP TABLE audit_entries; --", "../../etc/passwd", "%s%n",
         "\x00", "２０２６", "11010519491231002X", "110105194912310021", "1" * 18, "",
         "2026-01-01T00:00:00Z", "not-a-time", "{}", '{"op":">=","value":1}']


def targets(services: list[d.ServiceDescriptor]) -> list[Any]:
    return [pytest.param(s, m, id=f"{s.name}.{m.name}") for s in services for m in s.methods]


# -- strategies from descriptors -------------------------------------------------------------

def _scalar(f: d.FieldDescriptor, people: list[str]) -> st.SearchStrategy[Any]:
    t = f.type
    if t == d.FieldDescriptor.TYPE_STRING:
        return st.one_of(st.sampled_from(WORDS + people[:3]), st.text(max_size=40))
    if t == d.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == d.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (d.FieldDescriptor.TYPE_DOUBLE, d.FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if t == d.FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in f.enum_type.values]),
                         st.integers(-5, 99))
    if t in (d.FieldDescriptor.TYPE_UINT32, d.FieldDescriptor.TYPE_FIXED32):
        return st.one_of(st.integers(0, 20), st.integers(0, 2**32 - 1))
    if t in (d.FieldDescriptor.TYPE_UINT64, d.FieldDescriptor.TYPE_FIXED64):
        return st.one_of(st.integers(0, 20), st.integers(0, 2**64 - 1))
    if t in (d.FieldDescriptor.TYPE_INT32, d.FieldDescriptor.TYPE_SINT32,
             d.FieldDescriptor.TYPE_SFIXED32):
        return st.one_of(st.integers(-3, 20), st.integers(-2**31, 2**31 - 1))
    return st.one_of(st.integers(-3, 20), st.integers(-2**63, 2**63 - 1))


def message(desc: d.Descriptor, people: list[str], depth: int = 0) -> st.SearchStrategy[Message]:
    cls = GetMessageClass(desc)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in desc.fields:
        if f.type == d.FieldDescriptor.TYPE_MESSAGE:
            if depth >= 3 or f.message_type.GetOptions().map_entry:
                continue
            s = message(f.message_type, people, depth + 1)
        else:
            s = _scalar(f, people)
        repeated = f.is_repeated
        fields[f.name] = st.lists(s, max_size=4) if repeated else s

    def build(values: dict[str, Any]) -> Message:
        m = cls()
        for name, value in values.items():
            f = desc.fields_by_name[name]
            target = getattr(m, name) if f.type == d.FieldDescriptor.TYPE_MESSAGE or \
                f.is_repeated else None
            if f.is_repeated:
                target.extend(value)
            elif f.type == d.FieldDescriptor.TYPE_MESSAGE:
                target.CopyFrom(value)
            else:
                setattr(m, name, value)
        return m

    return st.fixed_dictionaries({}, optional=fields).map(build)


# -- calling ---------------------------------------------------------------------------------

def metadata_for(stack: Stack, roles: Any) -> list[tuple[str, str]]:
    if roles is None:
        return []
    if roles == "garbage":
        return [("authorization", "Bearer not.a.token")]
    return [("authorization", f"Bearer {stack.token(roles=roles)}")]


def invoke(channel: grpc.Channel, service: d.ServiceDescriptor, method: d.MethodDescriptor,
           requests: list[Message], md: list[tuple[str, str]]) -> grpc.RpcError | None:
    path = f"/{service.full_name}/{method.name}"
    out = GetMessageClass(method.output_type).FromString
    kw = dict(request_serializer=lambda m: m.SerializeToString(), response_deserializer=out)
    try:
        if method.client_streaming:
            call = (channel.stream_stream if method.server_streaming
                    else channel.stream_unary)(path, **kw)
            result = call(iter(requests), metadata=md, timeout=15)
        else:
            call = (channel.unary_stream if method.server_streaming
                    else channel.unary_unary)(path, **kw)
            result = call(requests[0], metadata=md, timeout=15)
        if method.server_streaming:
            for _ in result:
                pass
    except grpc.RpcError as err:
        return err
    return None


def check(err: grpc.RpcError | None, what: str) -> None:
    if err is None:
        return
    assert err.code() not in CRASH, f"{what}: {err.code().name}: {err.details()}"
    if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
        assert bad_request_fields(err), f"{what}: INVALID_ARGUMENT names no field: " \
                                        f"{err.details()}"


@pytest.fixture(scope="module")
def fuzz_stack(loop: LoopThread, base_cfg: Config,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: fuzzed admin calls may revoke agreements here."""
    s = start_stack(loop, isolated_cfg(base_cfg, tmp_path_factory.mktemp("fuzz")))
    yield s
    s.close()


@pytest.mark.parametrize(("service", "method"), targets(GATEWAY_SERVICES))
def test_gateway_rpcs_never_crash_on_bad_input(fuzz_stack: Stack, raw: RawData,
                                               service: d.ServiceDescriptor,
                                               method: d.MethodDescriptor) -> None:
    channel = fuzz_stack.channel()
    probe = invoke(channel, service, method, [GetMessageClass(method.input_type)()], [])
    if probe is not None and probe.code() == grpc.StatusCode.UNIMPLEMENTED:
        pytest.skip(f"{service.name} is not served by this gateway")
    people = raw.in_all[:3]

    @FUZZ
    @given(st.lists(message(method.input_type, people), min_size=1, max_size=3),
           st.sampled_from(ROLES))
    def run(requests: list[Message], roles: Any) -> None:
        check(invoke(channel, service, method, requests, metadata_for(fuzz_stack, roles)),
              f"{service.name}.{method.name}")

    run()


@pytest.mark.parametrize(("service", "method"), targets(CONNECTOR_SERVICES))
def test_connector_rpcs_never_crash_on_bad_input(fuzz_stack: Stack, raw: RawData,
                                                 service: d.ServiceDescriptor,
                                                 method: d.MethodDescriptor) -> None:
    channels = [fuzz_stack.channel(fuzz_stack.connector_address(p)) for p in fuzz_stack.partners]
    probe = invoke(channels[0], service, method, [GetMessageClass(method.input_type)()], [])
    if probe is not None and probe.code() == grpc.StatusCode.UNIMPLEMENTED:
        pytest.skip(f"{service.name} is not served by these connectors")
    people = raw.in_all[:3]

    @FUZZ
    @given(st.lists(message(method.input_type, people), min_size=1, max_size=3),
           st.sampled_from(range(len(channels))))
    def run(requests: list[Message], which: int) -> None:
        check(invoke(channels[which], service, method, requests, []),
              f"{service.name}.{method.name}")

    run()


# -- the agreement loader ----------------------------------------------------------------------

def _yaml_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                        st.floats(allow_nan=False), st.text(max_size=20),
                        st.sampled_from(WORDS), st.dates())
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.sampled_from(
            ["id", "version", "fields", "limits", "roles", "purpose", "partner", "join",
             "transform", "cohort_by", "valid_from", "valid_until", "requests_per_minute",
             "max_subjects_per_request", "keep_first", "op", "value", "min_k"]),
            st.integers()), inner, max_size=5)), max_leaves=20)


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    return {p.name: yaml.safe_load(p.read_text(encoding="utf-8"))
            for p in sorted((SHIPPED / "agreements").glob("*.yaml"))}


def lint_one(root: Path, text: str | bytes) -> None:
    """Lint a policy directory holding the shipped purposes and one agreement ``text``."""
    folder = root / "agreements"
    if not folder.exists():
        folder.mkdir(parents=True)
        shutil.copy(SHIPPED / "purposes.yaml", root / "purposes.yaml")
    path = folder / "fuzzed.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    problems = lint_policies(root)    # must not raise, whatever the file holds
    for p in problems:
        assert p.file and p.reason and isinstance(p.rule, str), p


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False)


def test_random_yaml_documents_are_linted_not_crashed(tmp_path: Path) -> None:
    @FUZZ
    @given(_yaml_values())
    def run(document: Any) -> None:
        lint_one(tmp_path, _dump(document))

    run()


def test_mutated_shipped_agreements_are_linted_not_crashed(tmp_path: Path,
                                                           shipped: dict[str, Any]) -> None:
    @FUZZ
    @given(st.sampled_from(sorted(shipped)), st.data())
    def run(name: str, data: st.DataObject) -> None:
        doc = yaml.safe_load(_dump(shipped[name]))
        for _ in range(data.draw(st.integers(1, 3))):
            # descend along a random path and replace, delete or add a key there
            node, key = doc, None
            while isinstance(node, dict) and node and data.draw(st.booleans()):
                key = data.draw(st.sampled_from(sorted(node, key=str)))
                if not isinstance(node[key], dict):
                    break
                node = node[key]
            if not isinstance(node, dict):
                continue
            action = data.draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "add" or not node:
                node[data.draw(st.text(max_size=12))] = data.draw(_yaml_values())
            else:
                key = data.draw(st.sampled_from(sorted(node, key=str)))
                if action == "delete":
                    del node[key]
                else:
                    node[key] = data.draw(_yaml_values())
        lint_one(tmp_path, _dump(doc))

    run()


def test_byte_mutations_of_shipped_agreements_are_linted_not_crashed(
        tmp_path: Path, shipped: dict[str, Any]) -> None:
    texts = {p.name: p.read_bytes() for p in (SHIPPED / "agreements").glob("*.yaml")}

    @FUZZ
    @given(st.sampled_from(sorted(texts)), st.data())
    def run(name: str, data: st.DataObject) -> None:
        text = bytearray(texts[name])
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(text)))
            kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
            if kind == "flip" and at < len(text):
                text[at] = data.draw(st.integers(0, 255))
            elif kind == "cut":
                del text[at:at + data.draw(st.integers(1, 40))]
            else:
                text[at:at] = data.draw(st.sampled_from(
                    [b"\t", b": ", b"- ", b"{", b"[", b"&a ", b"*a", b"!!python/object ",
                     b"\xff\xfe", b"\n  x: 1\n", b"? [a, b]\n: c\n", b"<<: *a\n"]))
        lint_one(tmp_path, bytes(text))

    run()
