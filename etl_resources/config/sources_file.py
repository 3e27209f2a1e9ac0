"""The sources file: a YAML list (or an Excel job list) of sources validated with pydantic, with errors that name
file, source and field, and where they are written."""

import datetime as dt
import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from etl_resources.config import excel as excel_config
from etl_resources.config.model import IDENTIFIER, BaseSource
from etl_resources.salesforce.model import SalesforceExport
from etl_resources.secrets import SecretStore, secret_names
from etl_resources.sources import registry
from etl_resources.warehouse import names as warehouse_names
from etl_resources.warehouse.dialects import UnsupportedWarehouseError

HINTS = {
    "missing": "add the field",
    "extra_forbidden": "remove it or fix its spelling",
    "date_from_datetime_parsing": "write the date as YYYY-MM-DD, e.g. 2026-11-01",
    "date_parsing": "write the date as YYYY-MM-DD, e.g. 2026-11-01",
    "date_type": "write the date as YYYY-MM-DD, e.g. 2026-11-01",
    "string_pattern_mismatch": "use letters, digits and underscores only, starting with a letter or underscore",
}
OWNER_HINT = "write team:<name> or an email address"


# Any registered kind's source; each kind's model subclasses this.
AnySource = BaseSource


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Narrowed to the registered kinds by sources_model(), which is what validates a file.
    sources: list[AnySource]
    exports: list[SalesforceExport] = []

    @model_validator(mode="after")
    def _exports_read_sources(self) -> "SourcesFile":
        names = {source.name for source in self.sources}
        for export in self.exports:
            unknown = [name for name in export.reads if name not in names]
            if unknown:
                raise ValueError(f"export '{export.name}' reads {unknown}, which are not sources in this file (fix: name sources from `sources:`)")
        return self

    @property
    def enabled(self) -> list[AnySource]:
        return [source for source in self.sources if source.enabled]


def sources_model() -> type[SourcesFile]:
    """SourcesFile whose `sources` are the kinds registered now, tagged by `kind`."""
    return _sources_model(registry.models())


@functools.cache
def _sources_model(models: tuple[type[BaseSource], ...]) -> type[SourcesFile]:
    return pydantic.create_model("SourcesFile", __base__=SourcesFile, __module__=__name__, sources=(list[registry.union_of(models)], ...))


class _StringDatesLoader(yaml.SafeLoader):
    """YAML without implicit timestamps, so a bad date reaches pydantic and gets a proper message."""


_StringDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class SourcesConfigError(ValueError):
    """Every problem of a sources file at once, each naming the file, the source and the field."""


_DATE = pydantic.TypeAdapter(dt.date)


def _source_label(raw: Any, index: int) -> str:
    name = raw[index].get("name") if isinstance(raw, list) and index < len(raw) and isinstance(raw[index], dict) else None
    return f"source '{name}' (sources[{index}])" if name else f"sources[{index}]"


Problem = tuple[tuple[str | int, ...], str]


def _field(parts: tuple[str | int, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".")


def _describe(error: dict[str, Any], raw_sources: Any) -> Problem:
    tags = registry.discriminator_tags()
    loc = [part for part in error["loc"] if part not in tags]
    path = tuple(loc)
    where = "the file"
    field = ".".join(str(p) for p in loc)
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
        where = _source_label(raw_sources, loc[1])
        field = ".".join(str(p) for p in loc[2:]) or "(the source itself)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "union_tag_invalid":
        tag = error["ctx"]["discriminator"].strip("'")
        field = f"{field}.{tag}".lstrip(".") if len(loc) > 2 else tag
        path = (*path, tag)
        message = f"unknown {tag} {error['ctx']['tag']!r}; supported: {error['ctx']['expected_tags']}"
    hint = HINTS.get(error["type"])
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    if error["type"] == "string_pattern_mismatch":
        message = f"{error['input']!r} is not a safe name"
        if loc[-1] == "type" and "columns" in loc:
            message, hint = f"unknown type {error['input']!r}", "use string, int, float, bool, date, timestamp or decimal(p,s)"
        elif loc[-1] == "name" and len(loc) == 3:
            hint = "use lower-case letters, digits and underscores, starting with a letter"
        elif "owners" in loc:
            message, hint = f"{error['input']!r} is not an owner", OWNER_HINT
        elif "tags" in loc:
            message, hint = f"{error['input']!r} is not a tag value", "use up to 63 letters, digits, '-', '_' or '.'"
    return path, f"{where}, field '{field}': {message}" + (f" (fix: {hint})" if hint else "")


def _entries(raw_sources: Any) -> list[tuple[int, dict]]:
    return [(i, s) for i, s in enumerate(raw_sources) if isinstance(s, dict)] if isinstance(raw_sources, list) else []


def _duplicate_problems(raw_sources: Any) -> list[Problem]:
    problems = []
    names: dict[Any, int] = {}
    for index, entry in _entries(raw_sources):
        name = entry.get("name")
        if name is not None and name in names:
            label = _source_label(raw_sources, index)
            problems.append((("sources", index, "name"), f"{label}, field 'name': duplicate of sources[{names[name]}] (fix: give every source its own name)"))
        names.setdefault(name, index)
    return problems


def _target_name_problems(raw_sources: Any, warehouse_url: str | None, secrets: SecretStore | None) -> list[Problem]:
    """Targets that are one table on the warehouse, or another target's generated name, or too long there.
    Targets whose names are not safe are left to the model's own message."""
    try:
        dialects, known = warehouse_names.warehouse_dialects(warehouse_url, secrets.lookup if secrets else None)
    except UnsupportedWarehouseError as err:
        raise SourcesConfigError(str(err)) from None
    targets = []
    for index, entry in _entries(raw_sources):
        target = entry.get("target")
        if isinstance(target, dict) and all(re.fullmatch(IDENTIFIER, str(name)) for name in (target.get("table"), target.get("schema") or "_")):
            mode = str(target.get("write_mode") or "replace_partition")
            label = _source_label(raw_sources, index)
            targets.append(warehouse_names.TargetName(index, label, entry.get("name"), target.get("schema"), target["table"], mode))
    return [(("sources", index, "target"), message) for index, message in warehouse_names.target_problems(dialects, known, targets)]


def _strings(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Every string in a raw source entry with its field path, for finding secret references."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [pair for key, item in value.items() if key != "description" for pair in _strings(item, (*path, str(key)))]
    if isinstance(value, list):
        return [pair for i, item in enumerate(value) for pair in _strings(item, (*path, i))]
    return []


def _secret_problems(raw: Any, secrets: SecretStore) -> list[Problem]:
    """Every `${NAME}` of the enabled sources and of the exports that cannot be found, where it is written."""
    problems = []
    for section, label in (("sources", "source"), ("exports", "export")):
        entries = raw.get(section) if isinstance(raw, dict) else None
        for index, entry in _entries(entries):
            if entry.get("enabled", True) is False:
                continue
            name_part = f"{label} '{entry['name']}' ({section}[{index}])" if entry.get("name") else f"{section}[{index}]"
            for parts, text in _strings(entry):
                where = f"{name_part}, field '{_field(parts)}'"
                for name in secret_names(text):
                    try:
                        found = secrets.lookup(name) is not None
                    except KeyError as err:
                        problems.append(((section, index, *parts), f"{where}: {err}"))
                        continue
                    if not found:
                        problems.append(((section, index, *parts), f"{where}: {secrets.missing_message(name)}"))
    return problems


def load_sources(path: Path, secrets: SecretStore | None, warehouse_url: str | None = None) -> SourcesFile:
    """Parse and validate a sources file; raise one SourcesConfigError listing every problem.

    With `secrets` None the file's `${NAME}` references are not looked up (checking a file away from its secrets).
    Target names are checked against the warehouse at `warehouse_url`; against every supported one without it."""
    _check_is_file(path)
    raw, problems, locate = _workbook(path) if path.suffix.lower() == ".xlsx" else _yaml(path)
    raw_sources = raw.get("sources")
    if "sources" in raw and raw_sources in (None, []):
        raise SourcesConfigError(f"no sources configured in {path.resolve()}: `sources:` lists none (fix: add one, as in the README's section 'Sources file')")
    try:
        sources = sources_model().model_validate(raw)
    except pydantic.ValidationError as err:
        problems += [_describe(e, raw_sources) for e in err.errors()]
    problems += _duplicate_problems(raw_sources) + _future_start_problems(raw) + _target_name_problems(raw_sources, warehouse_url, secrets)
    problems += _secret_problems(raw, secrets) if secrets else []
    if problems:
        raise SourcesConfigError(_report(path, locate, problems))
    if not sources.enabled:
        raise SourcesConfigError(
            f"no enabled source in {path.resolve()}: all {len(sources.sources)} have `enabled: false`, so nothing would be built "
            "(fix: set `enabled: true` on the sources to run)"
        )
    return sources


def _check_is_file(path: Path) -> None:
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix.lower() in {".yaml", ".yml", ".xlsx"})
        example = path / (inside[0] if inside else "sources.yaml")
        raise SourcesConfigError(f"sources file {path.resolve()} is a directory (fix: give the file's path, e.g. {example.resolve()})")
    if not path.is_file():
        raise SourcesConfigError(f"sources file {path.resolve()} does not exist (fix: point ETL_SOURCES_FILE at a sources YAML or workbook)")


def _future_start_problems(raw: dict) -> list[Problem]:
    """A start_date after today (UTC) of an enabled source or an export: its partitions would not exist yet,
    so nothing could run or be backfilled, and Dagster would not say why."""
    today = dt.datetime.now(dt.UTC).date()
    problems = []
    for section, label in (("sources", "source"), ("exports", "export")):
        for index, entry in _entries(raw.get(section)):
            try:
                start = _DATE.validate_python(entry.get("start_date"))
            except pydantic.ValidationError:
                continue  # reported by the model
            if entry.get("enabled", True) is False or start <= today:
                continue
            name_part = f"{label} '{entry['name']}' ({section}[{index}])" if entry.get("name") else f"{section}[{index}]"
            problems.append(
                (
                    (section, index, "start_date"),
                    f"{name_part}, field 'start_date': {start} is in the future (today, UTC, is {today}), so it has no day to load yet "
                    f"(fix: set start_date to {today} or earlier{'' if section == 'exports' else ', or enabled: false until then'})",
                )
            )
    return problems


def _text(path: Path) -> str:
    """The file as text: UTF-8 (a byte-order mark allowed), or UTF-16 with its byte-order mark, as YAML allows."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SourcesConfigError(f"sources file {path.resolve()} cannot be read: {err.strerror} (fix: check the file's permissions)") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"PK\x03\x04"):
        raise SourcesConfigError(
            f"sources file {path.resolve()} is a zip archive, such as an Excel workbook, not YAML text (fix: a workbook needs the extension .xlsx)"
        )
    if b"\x00" in data:
        raise SourcesConfigError(
            f"sources file {path.resolve()} is a binary file, not YAML text (fix: point ETL_SOURCES_FILE at the sources YAML; save text as UTF-8)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SourcesConfigError(
            f"sources file {path.resolve()} is not UTF-8 text: byte 0x{data[err.start]:02x} at line {line}, column {column} "
            f"(fix: save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix})"
        ) from None


def _yaml(path: Path) -> tuple[dict, list[Problem], Callable[[tuple], str]]:
    text = _text(path)
    try:
        raw = yaml.load(text, Loader=_StringDatesLoader)
    except yaml.YAMLError as err:
        raise SourcesConfigError(f"sources file {path.resolve()} is not valid YAML: {err}") from None
    if raw is None:
        raise SourcesConfigError(
            f"sources file {path.resolve()} is empty (fix: start it with `sources:` and a source, as in the README's section 'Sources file')"
        )
    if not isinstance(raw, dict):
        what = "a list" if isinstance(raw, list) else f"the single value {str(raw)[:40]!r}"
        fix = "put `sources:` on the first line and indent the list under it" if isinstance(raw, list) else "start it with `sources:` and a source"
        raise SourcesConfigError(f"sources file {path.resolve()} holds {what}, not a mapping with `sources:` (fix: {fix})")
    lines = yaml_lines(text)
    return raw, [], lambda where: f"line {line_of(lines, where)}"


def _workbook(path: Path) -> tuple[dict, list[Problem], Callable[[tuple], str]]:
    try:
        rows = excel_config.read_rows(path)
    except excel_config.WorkbookError as err:
        raise SourcesConfigError(str(err)) from None
    if not rows:
        raise SourcesConfigError(
            f"no sources configured in {path.resolve()}: sheet '{excel_config.SHEET}' has no rows under its header (fix: add a row per table or API endpoint)"
        )
    problems: list[Problem] = [
        (("sources", index, *excel_config.column_fields().get(column, ())), f"{message}")
        for index, row in enumerate(rows)
        for column, message in excel_config.row_problems(row)
    ]
    return {"sources": [excel_config.source_of(row) for row in rows]}, problems, excel_config.cell_of


def _report(path: Path, locate: Callable[[tuple], str], problems: list[Problem]) -> str:
    listed, seen = [], set()
    for where, problem in problems:
        location = locate(where)
        # A workbook cell already reported (a value outside its list) is not reported again as the model sees it.
        if path.suffix.lower() == ".xlsx" and location in seen:
            continue
        seen.add(location)
        listed.append(f"  - {location}: {problem}")
    return f"invalid sources file {path.resolve()}:\n" + "\n".join(listed)


def yaml_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """The 1-based line of every key and item in a YAML document, by its path (`("sources", 0, "name")`)."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[(*path, key.value)] = key.start_mark.line + 1
                walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*path, index)] = item.start_mark.line + 1
                walk(item, (*path, index))

    root = yaml.compose(text, Loader=_StringDatesLoader)
    if root is not None:
        walk(root, ())
    return lines


def line_of(lines: dict[tuple[str | int, ...], int], path: tuple[str | int, ...]) -> int:
    """The line of `path`, or of its nearest ancestor that is in the file (a missing field: its source)."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1
