"""Social security bureau (人社) field catalogue."""

from connectors.sdk._schema import FieldSpec, Schema
from connectors.sdk._schema import FieldType as T
from connectors.sdk._schema import Sensitivity as S

SCHEMA = Schema(
    partner="social-security",
    fields=(
        FieldSpec("name", T.STRING, S.PERSONAL, "Insured person's name"),
        FieldSpec("insured_status", T.STRING, S.SENSITIVE,
                  "Insurance status: active, suspended or terminated"),
        FieldSpec("employer_code", T.CODE, S.PERSONAL,
                  "Employer's unified social credit code (GB 32100-2015)"),
        FieldSpec("district_code", T.CODE, S.PERSONAL,
                  "Region code (6 digits, GB/T 2260) of the employer's district"),
        FieldSpec("contribution_base", T.FLOAT, S.SENSITIVE,
                  "Monthly contribution base in CNY"),
        FieldSpec("contribution_months", T.INT, S.SENSITIVE, "Months contributed in total"),
        FieldSpec("continuous_months", T.INT, S.SENSITIVE,
                  "Months contributed continuously up to the last contribution"),
        FieldSpec("last_contribution_month", T.MONTH, S.SENSITIVE,
                  "Last month with a contribution, YYYY-MM"),
        FieldSpec("unemployment_benefit", T.BOOL, S.SENSITIVE,
                  "Currently receiving unemployment benefit"),
    ),
)
