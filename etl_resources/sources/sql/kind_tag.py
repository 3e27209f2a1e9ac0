"""The kind tag the UI shows for a database, from its SQLAlchemy URL: a sql source's, and the warehouse's."""

import sqlalchemy as sa

from etl_resources.secrets import SECRET_REF

DIALECT_KINDS = {"postgresql": "postgres", "mssql": "azure_sql", "sqlite": "sqlite", "mysql": "mysql", "oracle": "oracle"}


def database_kind(url_template: str) -> str:
    """`sql` when the URL is one secret, so its dialect is unknown until run time."""
    if SECRET_REF.fullmatch(url_template.strip()):
        return "sql"
    return DIALECT_KINDS.get(sa.make_url(url_template).get_backend_name(), "sql")
