"""Agreement lifecycle commands: ``admin propose``, ``approve``, ``revoke``, ``list``, ``export``.

A ``policy-admin`` proposes; two distinct auditors other than the proposer approve the content
hash they reviewed; only then is the agreement active at the gateway. Connectors check every
request against their *own* copy, so a partner must install the approved version too:
``pgw admin export ID > policies/agreements/ID.yaml`` at the partner (replacing the older
version of that id), then restart its connector.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import grpc

from gateway.cli._common import (
    CliError,
    add_config,
    add_credentials,
    config_of,
    requester_ca,
    rpc_failure,
    table,
    token_for,
)
from gateway.client._channel import open_channel
from gateway.pb.pgw.v1 import admin_pb2, admin_pb2_grpc

DESCRIPTION = """The agreement lifecycle. A policy-admin proposes; two distinct auditors other
than the proposer approve the content hash they reviewed; only then is the agreement active at
the gateway. Revocation takes effect at once. Every step is an `admin` entry in the audit log.

Connectors check every request against their OWN copy of the agreement: once a version is
active, each partner installs it (`pgw admin export ID`, as policies/agreements/ID.yaml,
replacing the older version of ID) and restarts its connector."""

EPILOG = """lifecycle:
  pgw admin propose agreement.yaml --org hpf-changzhou --role policy-admin
  pgw admin list                                  (note the proposal id and content hash)
  pgw admin approve PROPOSAL_ID --hash HASH --org hpf-changzhou --role auditor --as officer-a
  pgw admin approve PROPOSAL_ID --hash HASH --org hpf-changzhou --role auditor --as officer-b
  pgw admin export ID > partner/policies/agreements/ID.yaml   (then restart that connector)
  pgw admin revoke ID --reason "..."              (refused from the next request on)
"""


def register(sub: Any) -> None:
    admin = sub.add_parser("admin", help="agreement lifecycle: propose, approve, revoke, list",
                           description=DESCRIPTION, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    p = actions.add_parser("propose", help="propose a new or changed agreement (policy-admin)",
                           description="Send an agreement file for approval. It is validated as "
                           "policy files are; a change must raise `version` above every known "
                           "version of its id. Prints the proposal id and content hash.")
    _remote(p)
    p.add_argument("file", type=Path, metavar="FILE", help="agreement YAML ('-' for stdin)")
    p.set_defaults(run=run_propose)
    a = actions.add_parser("approve", help="approve a proposal (auditor, not the proposer)",
                           description="Approve exactly the content you reviewed: --hash must "
                           "equal the proposal's content hash. Two distinct auditors activate it.")
    _remote(a)
    a.add_argument("proposal_id", metavar="PROPOSAL_ID")
    a.add_argument("--hash", required=True, dest="content_hash", metavar="HASH",
                   help="the content hash you reviewed (from `pgw admin list`)")
    a.set_defaults(run=run_approve)
    r = actions.add_parser("revoke", help="revoke an active agreement at once "
                           "(policy-admin or auditor)")
    _remote(r)
    r.add_argument("agreement_id", metavar="ID")
    r.add_argument("--reason", default="", help="why (recorded in the audit log)")
    r.set_defaults(run=run_revoke)
    ls = actions.add_parser("list", help="every agreement version with state and approvers")
    _remote(ls)
    ls.add_argument("agreement_id", nargs="?", default="", metavar="ID")
    ls.set_defaults(run=run_list)
    e = actions.add_parser("export", help="print the YAML of the active version for partners",
                           description="Print the active version's YAML. Partners install it as "
                           "policies/agreements/ID.yaml (replacing any older version of ID) and "
                           "restart their connector: connectors only release data under their "
                           "own copy of an agreement.")
    _remote(e)
    e.add_argument("agreement_id", metavar="ID")
    e.add_argument("--out", type=Path, metavar="FILE", help="write here instead of stdout")
    e.set_defaults(run=run_export)


def _remote(p: argparse.ArgumentParser) -> None:
    add_config(p)
    add_credentials(p)
    p.add_argument("--gateway", metavar="HOST:PORT", help="default: [gateway] listen")


def _call(args: argparse.Namespace, method: str, request: Any) -> Any:
    cfg = config_of(args)
    metadata = (("authorization", f"Bearer {token_for(cfg, args)}"),)

    async def go() -> Any:
        async with open_channel(args.gateway or cfg.listen, ca=requester_ca(cfg)) as channel:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            return await getattr(stub, method)(request, metadata=metadata, timeout=30)

    try:
        return asyncio.run(go())
    except grpc.RpcError as err:
        raise rpc_failure(err) from None


STATE_NAMES = {v: k.removeprefix("AGREEMENT_STATE_").lower()
               for k, v in admin_pb2.AgreementState.items()}


def describe(record: admin_pb2.AgreementRecord) -> str:
    a = record.agreement
    return (f"{a.id} v{a.version} {STATE_NAMES[record.state]}: proposal {record.proposal_id}, "
            f"content hash {a.content_hash}, approvals {len(record.approvers)} of "
            f"{record.approvals_required}")


def run_propose(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from None
    answer = _call(args, "ProposeAgreement",
                   admin_pb2.ProposeAgreementRequest(agreement_yaml=text))
    print(describe(answer.record))
    print(f"next: two auditors run `pgw admin approve {answer.record.proposal_id} --hash "
          f"{answer.record.agreement.content_hash}`", file=sys.stderr)
    return 0


def run_approve(args: argparse.Namespace) -> int:
    answer = _call(args, "ApproveAgreement", admin_pb2.ApproveAgreementRequest(
        proposal_id=args.proposal_id, content_hash=args.content_hash))
    print(describe(answer.record))
    if answer.record.state == admin_pb2.AGREEMENT_STATE_ACTIVE:
        print(f"active at the gateway; partners install it with `pgw admin export "
              f"{answer.record.agreement.id}`", file=sys.stderr)
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    answer = _call(args, "RevokeAgreement", admin_pb2.RevokeAgreementRequest(
        agreement_id=args.agreement_id, reason=args.reason))
    print(describe(answer.record))
    return 0


def run_list(args: argparse.Namespace) -> int:
    answer = _call(args, "ListAgreements",
                   admin_pb2.ListAgreementsRequest(agreement_id=args.agreement_id))
    rows = [[r.agreement.id, r.agreement.version, STATE_NAMES[r.state], r.proposal_id,
             r.agreement.content_hash, f"{len(r.approvers)}/{r.approvals_required}",
             ",".join(r.approvers) or "-"] for r in answer.agreements]
    print(table(["id", "version", "state", "proposal", "content hash", "approvals",
                 "approvers"], rows))
    return 0


def run_export(args: argparse.Namespace) -> int:
    answer = _call(args, "ExportAgreement",
                   admin_pb2.ExportAgreementRequest(agreement_id=args.agreement_id))
    if args.out:
        args.out.write_text(answer.agreement_yaml, encoding="utf-8")
        print(f"wrote {args.out}: {describe(answer.record)}", file=sys.stderr)
    else:
        sys.stdout.write(answer.agreement_yaml)
    return 0
