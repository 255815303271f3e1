"""Real-estate registry (不动产登记中心) field catalogue."""

from connectors.sdk import FieldSpec, Schema
from connectors.sdk import FieldType as T
from connectors.sdk import Sensitivity as S

SCHEMA = Schema(
    partner="real-estate",
    fields=(
        FieldSpec("properties_owned", T.INT, S.SENSITIVE,
                  "Residential properties currently registered to the person"),
        FieldSpec("first_registration_date", T.DATE, S.SENSITIVE,
                  "Date of the person's first registered property title, YYYY-MM-DD"),
        FieldSpec("last_registration_date", T.DATE, S.SENSITIVE,
                  "Date of the person's most recent title registration or transfer"),
        FieldSpec("mortgage_flag", T.BOOL, S.SENSITIVE,
                  "A mortgage is currently registered on a property the person owns"),
        FieldSpec("district_code", T.CODE, S.PERSONAL,
                  "Region code (6 digits, GB/T 2260) of the most recently registered property"),
    ),
)
