"""`etl-config`: check a sources file and say what it will build, or list every error at once with its line;
and write the JSON Schema that editors use to complete and flag the YAML as it is typed.

    etl-config validate sources.yaml|jobs.xlsx [--no-secrets] [--warehouse-url URL]
    etl-config schema [--output sources.schema.json]
    etl-config template --output jobs.xlsx
    etl-config convert sources.yaml jobs.xlsx   (or jobs.xlsx sources.yaml)
"""

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from etl_resources.config.excel import WorkbookError, read_rows, row_of, source_of, write_workbook
from etl_resources.config.sources_file import AnySource, SourcesConfigError, SourcesFile, load_sources, sources_model
from etl_resources.secrets import DEFAULT_SECRETS_FILE, KEY_VAULT_URL_ENV, SecretStore
from etl_resources.sources.registry import kind_of, splits_rejects
from etl_resources.warehouse.resource import DEFAULT_WAREHOUSE_URL

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "sources.schema.json"


def json_schema() -> dict:
    schema = _if_then(sources_model().model_json_schema(by_alias=True))
    schema["title"] = "Sources file of the Azure ETL platform"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def _if_then(node):
    """pydantic writes a tagged union (`kind`, `type`) as `oneOf` plus an OpenAPI `discriminator`, which JSON
    Schema validators ignore: a typo then reads "not valid under any of the given schemas". The same union as
    if/then picks the branch by its tag, so an editor names the actual field at fault."""
    if isinstance(node, list):
        return [_if_then(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _if_then(value) for key, value in node.items()}
    if "oneOf" in node and "discriminator" in node:
        tag, mapping = node["discriminator"]["propertyName"], node["discriminator"]["mapping"]
        del node["oneOf"], node["discriminator"]
        node["type"] = "object"
        node["required"] = [tag]
        node["properties"] = {tag: {"enum": list(mapping)}}
        node["allOf"] = [{"if": {"properties": {tag: {"const": value}}}, "then": {"$ref": ref}} for value, ref in mapping.items()]
    return node


def _checks(source: AnySource) -> str:
    checks = [f"rows >= {source.checks.min_rows}"]
    if splits_rejects(source):
        checks.append(f"reject_rate_max {source.checks.reject_rate_max:g}")
    if source.checks.schema_change:
        checks.append("schema unchanged")
    if source.freshness is not None:
        checks.append(f"fresh by {source.freshness.deadline} ({source.freshness.severity})")
    return ", ".join(checks)


def summary(sources: SourcesFile) -> str:
    rows = [("source", "kind", "reads", "schedule (UTC)", "target", "checks")]
    for source in sources.sources:
        target = f"{source.target.qualified} ({source.target.write_mode}" + (f" on {', '.join(source.target.keys)})" if source.target.keys else ")")
        name = source.name if source.enabled else f"{source.name} (disabled)"
        rows.append((name, source.kind, kind_of(source.kind).reads(source), source.schedule or "none", target, _checks(source)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1] for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="etl-config", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a sources file and summarize it, or list every problem")
    validate.add_argument("sources_file", type=Path)
    validate.add_argument("--secrets-file", default=os.environ.get("ETL_SECRETS_FILE", DEFAULT_SECRETS_FILE))
    validate.add_argument("--no-secrets", action="store_true", help="do not look the file's ${NAME} secrets up")
    validate.add_argument(
        "--warehouse-url", default=os.environ.get("ETL_WAREHOUSE_URL", DEFAULT_WAREHOUSE_URL), help="the warehouse whose naming rules the targets must fit"
    )
    schema = commands.add_parser("schema", help="print (or write) the JSON Schema of a sources file")
    schema.add_argument("--output", type=Path)
    template = commands.add_parser("template", help="write an empty job-list workbook, its columns explained on a second sheet")
    template.add_argument("--output", type=Path, required=True)
    convert = commands.add_parser("convert", help="rewrite a sources file as a workbook, or a workbook as YAML")
    convert.add_argument("source", type=Path)
    convert.add_argument("target", type=Path)
    args = parser.parse_args(argv)

    if args.command == "template":
        write_workbook(args.output, [])
        print(f"wrote {args.output}")
        return 0
    if args.command == "convert":
        return _convert(args.source, args.target)

    if args.command == "schema":
        text = json.dumps(json_schema(), indent=2) + "\n"
        if args.output:
            args.output.write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    secrets = None if args.no_secrets else SecretStore(Path(args.secrets_file), os.environ.get(KEY_VAULT_URL_ENV))
    try:
        sources = load_sources(args.sources_file, secrets, args.warehouse_url)
    except SourcesConfigError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{args.sources_file}: {len(sources.enabled)} source(s) enabled of {len(sources.sources)}\n")
    print(summary(sources))
    return 0


def _convert(source: Path, target: Path) -> int:
    """Both ways through the model, so what is written has passed the same validation (secrets not looked up)."""
    to_workbook = target.suffix.lower() == ".xlsx"
    if to_workbook == (source.suffix.lower() == ".xlsx"):
        print("convert: give a sources file and a .xlsx, or a workbook and a .yaml", file=sys.stderr)
        return 2
    try:
        sources = load_sources(source, None)
        if to_workbook:
            if sources.exports:
                raise WorkbookError(
                    f"{source}: exports ({', '.join(e.name for e in sources.exports)}) have no sheet in a workbook (fix: keep this file in YAML)"
                )
            write_workbook(target, [row_of(entry) for entry in sources.sources])
        else:
            raw = {"sources": [source_of(row) for row in read_rows(source)]}
            target.write_text(f"# yaml-language-server: $schema={SCHEMA_FILE.as_uri()}\n" + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    except (SourcesConfigError, WorkbookError) as err:
        print(err, file=sys.stderr)
        return 1
    print(f"wrote {target} ({len(sources.sources)} source(s))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
