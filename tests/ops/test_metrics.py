"""The admin endpoint: Prometheus ``/metrics`` and gRPC reflection, on the admin port only.

A real gateway and connectors run in-process (STYLE habit 9); the tests scrape over a real
socket and call reflection through a real channel, as Prometheus and ``grpcurl`` would.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pgw_it_harness import RawData, Stack, code_of

from gateway.metrics import Registry

SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def scrape(stack: Stack, path: str = "/metrics") -> tuple[str, str]:
    assert stack.gateway.admin is not None
    url = f"http://127.0.0.1:{stack.gateway.admin.metrics_port}{path}"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local test URL
        return response.headers["Content-Type"], response.read().decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample line as ``(name, labels) -> value`` (the format 0.0.4 parsed strictly)."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m["labels"] or ""))
        out[(m["name"], labels)] = float(m["value"])
    return out


def value(parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


def list_services(address: str) -> list[str]:
    with grpc.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        answers = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
    return [s.name for s in answers[0].list_services_response.service]


def test_decisions_latencies_and_queue_depth_are_exported(admin_stack: Stack,
                                                          raw: RawData) -> None:
    before = samples(scrape(admin_stack)[1])
    allowed = raw.in_all[:3]
    response = admin_stack.query("loan-eligibility", allowed,
                                 {"education": ["highest_degree", "graduation_year"]})
    assert len(response.results) == 3
    denied = raw.in_all[3:5]
    err = code_of(lambda: admin_stack.query(
        "loan-eligibility", denied, {"education": ["highest_degree"]},
        token=admin_stack.token(org="nanjing-tax-bureau")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED

    ctype, text = scrape(admin_stack)
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    after = samples(text)
    allow = {"kind": "query", "decision": "allow", "agreement": "hpf-loan-edu"}
    deny = {"kind": "query", "decision": "deny", "agreement": "none"}
    for labels in (allow, deny):
        assert value(after, "pgw_decisions_total", **labels) == \
            value(before, "pgw_decisions_total", **labels) + 1, labels
    fetch = {"partner": "education", "method": "Fetch"}
    assert value(after, "pgw_connector_call_seconds_count", **fetch) == \
        value(before, "pgw_connector_call_seconds_count", **fetch) + 1
    assert value(after, "pgw_connector_call_seconds_bucket", **fetch, le="+Inf") == \
        value(after, "pgw_connector_call_seconds_count", **fetch)
    assert value(after, "pgw_audit_append_seconds_count") >= \
        value(before, "pgw_audit_append_seconds_count") + 2
    assert value(after, "pgw_audit_append_seconds_sum") > 0
    assert ("pgw_audit_queue_depth", frozenset()) in after
    assert "# TYPE pgw_connector_call_seconds histogram" in text
    assert "# TYPE pgw_decisions_total counter" in text
    assert "# TYPE pgw_audit_queue_depth gauge" in text

    # No subject id, requester or released value ever becomes a label.
    for person in [*allowed, *denied]:
        assert person not in text
        for field in ("highest_degree", "graduation_year"):
            released = str(raw.row("education", person)[field])
            assert released not in {v for _, labels in after for _, v in labels}
        assert raw.row("education", person)["highest_degree"] not in text
    assert "officer-7" not in text and "nanjing-tax-bureau" not in text


def test_only_metrics_is_served(admin_stack: Stack) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        scrape(admin_stack, "/other")
    assert info.value.code == 404
    info.value.close()


def test_reflection_is_on_the_admin_port_only(admin_stack: Stack) -> None:
    assert admin_stack.gateway.admin is not None
    admin = f"127.0.0.1:{admin_stack.gateway.admin.grpc_port}"
    services = list_services(admin)
    assert "pgw.v1.GatewayService" in services
    assert {"pgw.v1.AuditService", "pgw.v1.ComputeService", "pgw.v1.JoinService"} <= set(services)
    with pytest.raises(grpc.RpcError) as info:
        list_services(admin_stack.address)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_registry_renders_the_text_format() -> None:
    reg = Registry()
    c = reg.counter("t_total", "A counter.", ("kind",))
    h = reg.histogram("t_seconds", "A histogram.", buckets=(0.1, 1.0))
    c.inc(kind='a"b\\c\nd')
    h.observe(0.05)
    h.observe(0.5)
    h.observe(5.0)
    assert reg.render().splitlines() == [
        "# HELP t_seconds A histogram.", "# TYPE t_seconds histogram",
        't_seconds_bucket{le="0.1"} 1', 't_seconds_bucket{le="1"} 2',
        't_seconds_bucket{le="+Inf"} 3', "t_seconds_sum 5.55", "t_seconds_count 3",
        "# HELP t_total A counter.", "# TYPE t_total counter",
        't_total{kind="a\\"b\\\\c\\nd"} 1']
    with pytest.raises(ValueError, match="labels"):
        c.inc(subject="x")
    with pytest.raises(ValueError, match="already registered"):
        reg.counter("t_total", "again")
