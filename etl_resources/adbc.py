"""ADBC connections to PostgreSQL for columnar reads (extraction), from the same SQLAlchemy URL."""

import adbc_driver_postgresql.dbapi as adbc
import sqlalchemy as sa


def connect_adbc(url: sa.URL) -> adbc.Connection:
    """A DB-API connection (autocommit off) through ADBC's PostgreSQL driver; libpq takes the URL as is."""
    return adbc.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
