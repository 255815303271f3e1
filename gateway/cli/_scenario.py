"""What the demo scenarios share: the HPF centre's development token and its applicants."""

from __future__ import annotations

from gateway.config import Config

ORG = "hpf-changzhou"


def hpf_token(cfg: Config, officer: str) -> str:
    """A requester token for the HPF centre from the local development issuer."""
    from gateway.auth import DevIssuer

    issuer = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer, audience=cfg.audience)
    return issuer.issue(ORG, ["requester"], subject=officer)


def applicants(cfg: Config, n: int = 5) -> list[str]:
    """``n`` people known to social security, education and the bank (loan applicants)."""
    from connectors.datagen import load_person_ids

    in_all = set(load_person_ids(cfg.connector("bank").database, 400))
    in_all &= set(load_person_ids(cfg.connector("education").database, 400))
    return [i for i in load_person_ids(cfg.connector("social-security").database, 400)
            if i in in_all][:n]
