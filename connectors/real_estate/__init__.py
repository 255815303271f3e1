"""The real-estate registry (不动产登记) connector: built on the public SDK only.

Registered as the entry point ``pgw.connectors`` ``real-estate``; data access by configuration
(:class:`~connectors.sdk.SqlSource`), synthetic records for the demo population.
"""

from connectors.real_estate.schema import SCHEMA
from connectors.real_estate.source import TABLE, open_source
from connectors.real_estate.synthetic import synthesize
from connectors.sdk import ConnectorPlugin

PLUGIN = ConnectorPlugin(partner="real-estate", schema=SCHEMA, open_source=open_source,
                         synthesize=synthesize, database="real_estate.db", table=TABLE)

__all__ = ["PLUGIN", "SCHEMA"]
