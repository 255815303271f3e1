"""The public connector SDK: what a connector author needs, and nothing else."""

from connectors.sdk._datasource import DataSource, InMemorySource, Row
from connectors.sdk._schema import FieldSpec, FieldType, Schema, Sensitivity
from connectors.sdk._sqlite_source import SqliteSource

__all__ = [
    "DataSource",
    "FieldSpec",
    "FieldType",
    "InMemorySource",
    "Row",
    "Schema",
    "Sensitivity",
    "SqliteSource",
]
