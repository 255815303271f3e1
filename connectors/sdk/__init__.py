"""The public connector SDK: what a connector author needs, and nothing else."""

from connectors.sdk._datasource import DataSource, InMemorySource, Row
from connectors.sdk._schema import FieldSpec, FieldType, Schema, Sensitivity

__all__ = sorted([
    "DataSource",
    "FieldSpec",
    "FieldType",
    "InMemorySource",
    "Row",
    "Schema",
    "Sensitivity",
])
