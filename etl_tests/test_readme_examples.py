"""Every ```yaml block of the README is validated, so an example a user copies passes the check they will run.

Blocks are found automatically and recognised by what they hold; none is skipped:
- a whole sources file (`sources:`, maybe `exports:`): loaded as it is;
- `exports:` alone: loaded next to minimal sources named in their `reads`;
- a list of sources (`- name: …`): loaded as the file's `sources:`;
- a source's fields (`contract:`, `pagination:`, …, indented as in a source): merged into a minimal source of
  the first kind (sql, rest, files) that has every one of those fields;
- a contract's fields (`columns:`, `keys:`), or columns alone (`price: {type: …}`): the contract of a minimal source;
- a Dagster instance (`dagster.yaml`) or workspace (`load_from:`): checked against Dagster's own config schema
  (a private module of Dagster, the only place that schema is exposed).
A block that is none of these fails the test, naming its line in the README.
Every sources example goes through `load_sources`, the loader of `etl-config validate` and of the code location;
secrets are not looked up, as with `--no-secrets`.
"""

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from etl_resources.config.model import ColumnRule, Contract
from etl_resources.config.sources_file import SourcesConfigError, load_sources
from etl_resources.sources.files.model import FileSource
from etl_resources.sources.rest.model import RestSource
from etl_resources.sources.sql.model import SqlSource
from etl_tests.support.servers import REPO

README = REPO / "README.md"
# A fence may be indented (inside a list item); its block ends at the next fence line.
FENCE = re.compile(r"^[ \t]*(?P<fence>```|~~~)(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^[ \t]*(?P=fence)", re.MULTILINE | re.DOTALL)
MINIMAL = {
    SqlSource: {"kind": "sql", "connection": "sqlite:///example.db", "table": "example"},
    RestSource: {"kind": "rest", "base_url": "https://api.example.net"},
    FileSource: {"kind": "files", "landing": "/srv/landing", "contract": {"columns": {"id": {"type": "int"}}}},
}


def yaml_blocks(text: str) -> list[tuple[int, str]]:
    """(line in the README, text) of every fenced block marked yaml or yml."""
    return [
        (text.count("\n", 0, match.start()) + 1, textwrap.dedent(match["body"])) for match in FENCE.finditer(text) if match["lang"].lower() in {"yaml", "yml"}
    ]


def minimal_source(name: str, model: type, fields: dict) -> dict:
    return {"name": name, **MINIMAL[model], "start_date": "2026-01-01", "target": {"table": name}} | fields


def _field_names(model: type) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()} | set(model.model_fields)


def as_sources_file(block) -> dict | None:
    """The block as a sources file, or None when it is not about sources."""
    if isinstance(block, list) and block and all(isinstance(entry, dict) and "kind" in entry for entry in block):
        return {"sources": block}
    if not isinstance(block, dict):
        return None
    if "sources" in block:
        return block
    if set(block) == {"exports"}:
        reads = sorted({name for export in block["exports"] for name in export.get("reads", [])})
        return {"sources": [minimal_source(name, SqlSource, {}) for name in reads], **block}
    model = next((model for model in MINIMAL if set(block) <= _field_names(model)), None)
    if model:
        return {"sources": [minimal_source("example", model, block)]}
    if set(block) <= _field_names(Contract):
        return {"sources": [minimal_source("example", SqlSource, {"contract": block})]}
    if all(isinstance(rule, dict) and set(rule) <= _field_names(ColumnRule) for rule in block.values()):
        return {"sources": [minimal_source("example", SqlSource, {"contract": {"columns": block}})]}
    return None


def dagster_config_errors(block) -> list[str] | None:
    """What Dagster's schema says of a workspace or instance block, or None when the block is neither."""
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema
    from dagster._core.workspace.config_schema import WORKSPACE_CONFIG_SCHEMA

    if not isinstance(block, dict):
        return None
    if "load_from" in block:
        schema = WORKSPACE_CONFIG_SCHEMA
    elif set(block) <= set(dagster_instance_config_schema()):
        schema = dagster_instance_config_schema()
    else:
        return None
    result = validate_config(schema, block)
    return [] if result.success else [error.message for error in result.errors]


BLOCKS = yaml_blocks(README.read_text())


def test_the_readme_has_yaml_examples_and_every_one_is_found():
    text = README.read_text().lower()
    openings = len(re.findall(r"^[ \t]*(```|~~~)ya?ml\b", text, re.MULTILINE))
    assert len(BLOCKS) == openings >= 5


@pytest.mark.parametrize(("line", "text"), BLOCKS, ids=[f"README line {line}" for line, _ in BLOCKS])
def test_a_readme_yaml_example_is_valid(tmp_path: Path, line: int, text: str):
    block = yaml.safe_load(text)
    dagster_errors = None if block is not None and as_sources_file(block) else dagster_config_errors(block)
    if dagster_errors is not None:
        assert dagster_errors == [], f"README line {line}"
        return
    sources_file = as_sources_file(block)
    assert sources_file is not None, (
        f"README line {line}: a yaml block this test does not recognise; write it as a sources file, a list of sources, "
        "or a source's fields (indented as in a source), or teach etl_tests/test_readme_examples.py what it is"
    )
    path = tmp_path / "sources.yaml"
    # A whole file is loaded as written; a fragment, once placed in its minimal file.
    path.write_text(text if sources_file is block else yaml.safe_dump(sources_file, sort_keys=False, allow_unicode=True))
    try:
        load_sources(path, None)
    except SourcesConfigError as err:
        pytest.fail(f"README line {line}: the example fails validation:\n{err}")


def test_a_block_the_test_cannot_place_is_not_skipped():
    """The recogniser says None for what is neither sources nor Dagster config, so the test above fails on it."""
    block = yaml.safe_load("contrat:\n  keys: [id]\n")
    assert as_sources_file(block) is None and dagster_config_errors(block) is None
    columns = as_sources_file(yaml.safe_load("price: {type: float, min: 0}\n"))
    assert columns["sources"][0]["contract"] == {"columns": {"price": {"type": "float", "min": 0}}}
    for config in ("dagster.yaml", "workspace.yaml"):
        assert dagster_config_errors(yaml.safe_load((REPO / config).read_text())) == []
    assert "run_launcher" in dagster_config_errors({"run_launcher": 3})[0]
    assert yaml_blocks("text\n```yaml\na: 1\n```\n```bash\nls\n```\n- item\n  ```yml\n  b: 2\n  ```\n") == [(2, "a: 1\n"), (9, "b: 2\n")]
