"""Audit rows the warehouse could not take wait on local disk, one JSON file each, until a later write succeeds.

A row is written to a temporary name and renamed into place, so a crash never leaves half a row. A replay
claims each file by renaming it first, so two runs replaying at once never insert the same row twice; rows
whose insert fails are put back for the next run.
"""

import datetime as dt
import json
import os
import uuid
from dataclasses import asdict, fields
from pathlib import Path

import sqlalchemy as sa

from etl_resources.warehouse.audit import AuditRow, write_audit_rows

DEFAULT_AUDIT_QUEUE = ".etl/audit-queue"
_DATES = {"started_at", "finished_at"}


def enqueue(queue: Path, row: AuditRow) -> Path:
    queue.mkdir(parents=True, exist_ok=True)
    name = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.json"
    temporary = queue / f".{name}.tmp"
    temporary.write_text(json.dumps(asdict(row), default=str))
    os.replace(temporary, queue / name)
    return queue / name


def _row(path: Path) -> AuditRow:
    data = json.loads(path.read_text())
    known = {field.name for field in fields(AuditRow)}
    return AuditRow(**{key: dt.datetime.fromisoformat(value) if key in _DATES and value else value for key, value in data.items() if key in known})


def pending(queue: Path) -> list[Path]:
    return sorted(queue.glob("*.json")) if queue.is_dir() else []


def replay(engine: sa.Engine, queue: Path) -> int:
    """Insert the queued rows, oldest first, in one transaction; return how many went in."""
    claimed: list[tuple[Path, Path]] = []
    for path in pending(queue):
        claim = path.with_name(f"{path.name}.claimed-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        try:
            os.rename(path, claim)
        except FileNotFoundError:
            continue  # another run claimed it first
        claimed.append((path, claim))
    rows = []
    for path, claim in list(claimed):
        try:
            rows.append(_row(claim))
        except (ValueError, TypeError):
            # A file no run can read must not hold back the others; it stays on disk for a person to look at.
            os.rename(claim, path.with_name(f"{path.name}.unreadable"))
            claimed.remove((path, claim))
    if not claimed:
        return 0
    try:
        write_audit_rows(engine, rows)
    except BaseException:
        for path, claim in claimed:
            os.rename(claim, path)
        raise
    for _, claim in claimed:
        claim.unlink()
    return len(claimed)
