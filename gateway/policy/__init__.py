"""Sharing agreements: the model, the loader and linter, and the policy decision.

Agreements are files under ``policies/``, parsed once into frozen objects; the gateway
decides every request against them (deny by default, all or nothing) and each connector
checks every release spec against its own copy with :func:`check_spec_against`.
"""

from gateway.policy._decide import (
    PartnerDecision,
    PolicySet,
    RequestDecision,
    check_spec_against,
    choose_agreement,
)
from gateway.policy._loader import (
    PolicyLoadError,
    PolicyProblem,
    default_catalogues,
    lint_policies,
    load_policies,
)
from gateway.policy._model import ROLES, Agreement, FieldGrant, Limits, Purpose
from gateway.policy._models import ApprovedModel, ModelInput, load_models
from gateway.policy._registry import AgreementRegistry
from gateway.policy._registry_types import AdminAudit, AdminEvent, AgreementRecord

__all__ = [
    "AdminAudit",
    "AdminEvent",
    "Agreement",
    "AgreementRecord",
    "AgreementRegistry",
    "ApprovedModel",
    "FieldGrant",
    "Limits",
    "ModelInput",
    "PartnerDecision",
    "PolicyLoadError",
    "PolicyProblem",
    "PolicySet",
    "Purpose",
    "ROLES",
    "RequestDecision",
    "check_spec_against",
    "choose_agreement",
    "default_catalogues",
    "lint_policies",
    "load_models",
    "load_policies",
]
