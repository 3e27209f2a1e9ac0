"""Sources files for the SQL source tests."""


def incremental_yaml(connection: str, sources: dict[str, str], start_date: str) -> str:
    """One incremental `sql` source per name, each with its own `table:`/`query:` and `watermark_column:` lines,
    loaded into dw.<name>."""
    return "sources:\n" + "".join(
        f"""  - name: {name}
    kind: sql
    connection: {connection}
    {what}
    mode: incremental
    start_date: {start_date}
    target: {{schema: dw, table: {name}}}
"""
        for name, what in sources.items()
    )
