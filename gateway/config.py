"""The one configuration file every command reads (``--config FILE``, default ``./pgw.toml``).

Relative paths in the file are resolved against the file's own directory, so a work
directory made by ``pgw init`` or ``pgw demo --workdir`` can be used from anywhere.
Unknown keys are errors: a typo must never silently fall back to a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

DEFAULT_PATH = Path("pgw.toml")


def known_partners() -> tuple[str, ...]:
    """The installed partners (entry points ``pgw.connectors``); a bad plug-in raises here."""
    from connectors.registry import partners  # local: discovery imports the plug-ins

    return partners()


def __getattr__(name: str) -> Any:
    if name == "PARTNERS":  # discovered on first use, not at import
        return known_partners()
    raise AttributeError(f"module 'gateway.config' has no attribute {name!r}")


@dataclass(frozen=True)
class ConnectorConfig:
    partner: str
    address: str                 # where the connector listens and the gateway dials
    database: Path
    pseudonym_secret: Path       # per-partner secret; per-agreement HMAC keys derive from it
    witness_key: Path            # Ed25519 key this connector cosigns checkpoints with
    witness_public_key: Path     # its public half, for the gateway and the officers
    witness_state: Path          # where it persists the last checkpoint it cosigned
    trusted_gateway_keys: tuple[Path, ...]
    policies: Path               # the partner's own copy of the agreements
    sql: dict[str, Any] = field(default_factory=dict)  # [connectors.NAME.sql], for SqlSource
    tls_cert: Path | None = None  # its TLS server certificate and key, when [tls] is set
    tls_key: Path | None = None


@dataclass(frozen=True)
class TlsConfig:
    """``[tls]``: mutual TLS between gateway and connectors (``pgw pki init`` makes the files);
    ``requester_tls`` also serves the public port over TLS with the gateway's certificate."""

    ca: Path
    gateway_cert: Path
    gateway_key: Path
    requester_tls: bool = False


@dataclass(frozen=True)
class Config:
    path: Path
    listen: str
    policies: Path
    spec_key: Path
    spec_ttl_s: float
    request_timeout_s: float
    jwks: Path
    issuer: str
    audience: str
    leeway_s: int
    dev_issuer_dir: Path
    audit_dsn: str
    audit_hash: str
    audit_origin: str
    log_key: Path
    log_public_key: Path
    audit_pseudonym_key: Path
    witness_quorum: int
    witness_interval_ms: int
    data_dir: Path
    data_seed: int
    data_people: int
    connectors: dict[str, ConnectorConfig] = field(default_factory=dict)
    tls: TlsConfig | None = None  # None: plaintext everywhere (the default)
    # [gateway] admin_listen: /metrics over HTTP there, gRPC reflection one port above; None: off
    admin_listen: str | None = None
    # [budgets] dsn: sqlite:///path, postgresql://..., redis://...; None: beside the audit log
    # (gateway.budgets.default_budget_dsn, resolved at start-up against the audit_dsn in force)
    budgets_dsn: str | None = None
    # [gateway] connector_max_inflight: Fetch calls in flight per connector before further
    # specs queue and share one FetchBatch call (gateway._coalesce); a large value: no batching
    connector_max_inflight: int = 1  # = gateway._coalesce.DEFAULT_MAX_INFLIGHT (tested)

    def witness_name(self, partner: str) -> str:
        """The name a partner's witness signs cosignatures with."""
        return f"{partner}.witness.{self.audit_origin.split('/')[0]}"

    def connector(self, partner: str) -> ConnectorConfig:
        try:
            return self.connectors[partner]
        except KeyError:
            known = ", ".join(sorted(self.connectors)) or "none"
            raise ConfigError(f"{self.path}: no [connectors.{partner}] section "
                              f"(configured: {known})") from None


class _Section:
    """Reads one TOML table, tracking which keys were used so leftovers are errors."""

    def __init__(self, path: Path, name: str, data: dict[str, Any]) -> None:
        self.path, self.name, self.data, self.used = path, name, data, set[str]()

    def get(self, key: str, kind: type, default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise ConfigError(f"{self.path}: [{self.name}] {key}: missing")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{self.path}: [{self.name}] {key}: got {type(value).__name__}, "
                              f"want {kind.__name__}")
        return value

    def path_of(self, key: str, default: str | None = None) -> Path:
        raw = self.get(key, str, ... if default is None else default)
        p = Path(raw)
        return p if p.is_absolute() else (self.path.parent / p).resolve()

    def finish(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise ConfigError(f"{self.path}: [{self.name}] unknown key(s): {', '.join(extra)}")


def load_config(path: Path | str | None = None) -> Config:
    path = Path(path or DEFAULT_PATH).resolve()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; create one with "
                          "`pgw init --workdir DIR` or `pgw demo --workdir DIR`") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - {"gateway", "auth", "audit", "data", "connectors", "tls",
                                 "budgets"})
    if unknown:
        raise ConfigError(f"{path}: unknown section(s): {', '.join(unknown)}")
    gw = _Section(path, "gateway", raw.get("gateway", {}))
    auth = _Section(path, "auth", raw.get("auth", {}))
    audit = _Section(path, "audit", raw.get("audit", {}))
    data = _Section(path, "data", raw.get("data", {}))
    budgets = _Section(path, "budgets", raw.get("budgets", {}))
    budgets_dsn = budgets.get("dsn", str, None)
    if budgets_dsn is not None and "://" not in budgets_dsn:  # a path, as for [audit] dsn
        budgets_dsn = "sqlite:///" + str(budgets.path_of("dsn"))
    dsn = audit.get("dsn", str, "audit.db")
    if "://" not in dsn:
        dsn = "sqlite:///" + str(audit.path_of("dsn", "audit.db"))
    policies = gw.path_of("policies")
    tls = _tls(path, raw["tls"]) if "tls" in raw else None
    cfg = Config(
        path=path,
        listen=gw.get("listen", str, "127.0.0.1:50051"),
        policies=policies,
        spec_key=gw.path_of("spec_key"),
        spec_ttl_s=gw.get("spec_ttl_s", float, 30.0),
        request_timeout_s=gw.get("request_timeout_s", float, 10.0),
        jwks=auth.path_of("jwks"),
        issuer=auth.get("issuer", str),
        audience=auth.get("audience", str),
        leeway_s=auth.get("leeway_s", int, 30),
        dev_issuer_dir=auth.path_of("dev_issuer_dir", "keys/issuer"),
        audit_dsn=dsn,
        audit_hash=audit.get("hash", str, "sha256"),
        audit_origin=audit.get("origin", str),
        log_key=audit.path_of("log_key"),
        log_public_key=audit.path_of("log_public_key"),
        audit_pseudonym_key=audit.path_of("pseudonym_key"),
        witness_quorum=audit.get("witness_quorum", int, 0),
        witness_interval_ms=audit.get("witness_interval_ms", int, 1000),
        data_dir=data.path_of("dir", "data"),
        data_seed=data.get("seed", int, 20261125),
        data_people=data.get("people", int, 100_000),
        connectors={name: _connector(path, name, section, policies, tls=tls is not None)
                    for name, section in raw.get("connectors", {}).items()},
        tls=tls,
        admin_listen=gw.get("admin_listen", str, None),
        budgets_dsn=budgets_dsn,
        connector_max_inflight=_at_least_one(gw, "connector_max_inflight", 1),
    )
    for section in (gw, auth, audit, data, budgets):
        section.finish()
    return cfg


def _at_least_one(section: _Section, key: str, default: int) -> int:
    value: int = section.get(key, int, default)
    if value < 1:
        raise ConfigError(f"{section.path}: [{section.name}] {key}: got {value}, want >= 1")
    return value


def _tls(path: Path, data: Any) -> TlsConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [tls]: got {type(data).__name__}, want a table")
    s = _Section(path, "tls", data)
    tls = TlsConfig(ca=s.path_of("ca", "pki/ca.pem"),
                    gateway_cert=s.path_of("gateway_cert", "pki/gateway.pem"),
                    gateway_key=s.path_of("gateway_key", "pki/gateway.key"),
                    requester_tls=s.get("requester_tls", bool, False))
    s.finish()
    return tls


def _connector(path: Path, name: str, data: dict[str, Any], policies: Path, *,
               tls: bool = False) -> ConnectorConfig:
    known = known_partners()
    if name not in known:
        raise ConfigError(f"{path}: [connectors.{name}]: unknown partner "
                          f"(want one of {', '.join(known)})")
    s = _Section(path, f"connectors.{name}", data)
    trusted = s.get("trusted_gateway_keys", list)
    base = path.parent
    cfg = ConnectorConfig(
        partner=name,
        address=s.get("address", str),
        database=s.path_of("database"),
        pseudonym_secret=s.path_of("pseudonym_secret"),
        witness_key=s.path_of("witness_key"),
        witness_public_key=s.path_of("witness_public_key"),
        witness_state=s.path_of("witness_state", f"witness-{name}.json"),
        trusted_gateway_keys=tuple((base / p).resolve() for p in trusted),
        policies=s.path_of("policies", str(policies)),
        sql=_sql(path, name, s.get("sql", dict, {})),
        # with [tls]: pki/NAME.pem and pki/NAME.key unless given (as `pgw pki init` names them)
        tls_cert=s.path_of("tls_cert", f"pki/{name}.pem") if tls else None,
        tls_key=s.path_of("tls_key", f"pki/{name}.key") if tls else None,
    )
    s.finish()
    return cfg


def _sql(path: Path, name: str, data: dict[str, Any]) -> dict[str, Any]:
    """``[connectors.NAME.sql]`` as given, a relative SQLite ``dsn`` resolved like any path
    (the keys themselves are checked by the partner's DataSource when it opens)."""
    out = dict(data)
    dsn = out.get("dsn")
    if dsn is not None and not isinstance(dsn, str):
        raise ConfigError(f"{path}: [connectors.{name}.sql] dsn: got {type(dsn).__name__}, "
                          "want str")
    if isinstance(dsn, str) and "://" not in dsn and not Path(dsn).is_absolute():
        out["dsn"] = str((path.parent / dsn).resolve())
    return out
