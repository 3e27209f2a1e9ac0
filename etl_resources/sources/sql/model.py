"""The config of a `sql` source: a table or query in any database SQLAlchemy can reach."""

from typing import Literal

import sqlalchemy as sa
from pydantic import model_validator

from etl_resources.config.model import BaseSource, QualifiedTable
from etl_resources.secrets import SECRET_REF


class SqlSource(BaseSource):
    """A table or query in any database SQLAlchemy can reach."""

    kind: Literal["sql"]
    connection: str
    table: QualifiedTable | None = None
    query: str | None = None
    mode: Literal["snapshot", "incremental"] = "snapshot"
    watermark_column: str | None = None

    @model_validator(mode="after")
    def _table_or_query(self) -> "SqlSource":
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` or `query`")
        if self.mode == "incremental" and not self.watermark_column:
            raise ValueError("mode `incremental` needs `watermark_column`: the column whose value places a row in a day")
        if SECRET_REF.fullmatch(self.connection.strip()):
            return self
        try:
            sa.make_url(self.connection)
        except sa.exc.ArgumentError as err:
            raise ValueError(f"`connection` is not a SQLAlchemy URL ({err}); e.g. postgresql+psycopg://user:${{PG_PASSWORD}}@host/db") from None
        return self

    @property
    def protocol(self) -> str:
        """The dialect, e.g. postgresql; `sql` when the whole URL is one secret and so unknown until run time."""
        if SECRET_REF.fullmatch(self.connection.strip()):
            return "sql"
        return sa.make_url(self.connection).get_backend_name()

    @property
    def default_description(self) -> str:
        return f"{self.mode.capitalize()} extract of {self.table or 'a query'} from {self.protocol}"
