"""Education bureau (教育局 / degree records) field catalogue."""

from connectors.sdk._schema import FieldSpec, Schema
from connectors.sdk._schema import FieldType as T
from connectors.sdk._schema import Sensitivity as S

SCHEMA = Schema(
    partner="education",
    fields=(
        FieldSpec("highest_degree", T.STRING, S.PERSONAL,
                  "Highest degree: none, associate, bachelor, master or doctor"),
        FieldSpec("degree_level", T.INT, S.PERSONAL,
                  "Highest degree as a level: 0 none, 1 associate, 2 bachelor, 3 master, 4 doctor"),
        FieldSpec("institution", T.STRING, S.PERSONAL, "Awarding institution"),
        FieldSpec("major", T.STRING, S.PERSONAL, "Major subject"),
        FieldSpec("graduation_year", T.INT, S.PERSONAL, "Year of graduation"),
        FieldSpec("certificate_number", T.STRING, S.IDENTIFIER, "Degree certificate number"),
    ),
)
