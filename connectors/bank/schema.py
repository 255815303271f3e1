"""Bank field catalogue (payroll, income, credit)."""

from connectors.sdk._schema import FieldSpec, Schema
from connectors.sdk._schema import FieldType as T
from connectors.sdk._schema import Sensitivity as S

SCHEMA = Schema(
    partner="bank",
    fields=(
        FieldSpec("card_number", T.STRING, S.IDENTIFIER, "Payroll card number (Luhn-valid)"),
        FieldSpec("payroll_inflows_12m", T.FLOAT_LIST, S.SENSITIVE,
                  "Payroll inflows for the last 12 months in CNY, oldest first"),
        FieldSpec("income_avg_12m", T.FLOAT, S.SENSITIVE,
                  "Average monthly payroll inflow over 12 months in CNY"),
        FieldSpec("overdue_flag", T.BOOL, S.SENSITIVE, "Any loan currently overdue"),
        FieldSpec("outstanding_loans", T.FLOAT, S.SENSITIVE,
                  "Outstanding loan balance in CNY"),
    ),
)
