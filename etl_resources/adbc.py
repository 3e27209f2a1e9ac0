"""ADBC connections to PostgreSQL, for columnar reads and binary COPY loads, from the same SQLAlchemy URL."""

import sqlalchemy as sa


def connect_adbc(url: sa.URL):
    """A DB-API connection (autocommit off) through ADBC's PostgreSQL driver; libpq takes the URL as is."""
    import adbc_driver_postgresql.dbapi as adbc

    return adbc.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
