"""The source kinds, registered in one place; the sources file's model, its error locations, its JSON Schema and
the workbook's columns are derived from what is registered here."""

import functools
from typing import Annotated, Any, Union, get_args

import pydantic
from pydantic import Field

from etl_resources.config.model import BaseSource
from etl_resources.sources import files, google_sheets, kafka, mongodb, nats, rabbitmq, rest, soap, sql
from etl_resources.sources.base import SourceKind

_KINDS: dict[str, SourceKind] = {}


def register(kind: SourceKind) -> SourceKind:
    """Add a kind; its model's `kind` field must be `Literal[<kind>]`, the tag the sources file names it by."""
    tag = kind.model.model_fields.get("kind") if issubclass(kind.model, BaseSource) else None
    if tag is None or get_args(tag.annotation) != (kind.kind,):
        raise ValueError(f"source kind {kind.kind!r}: {kind.model.__name__} must subclass BaseSource with the field `kind: Literal[{kind.kind!r}]`")
    if kind.kind in _KINDS:
        raise ValueError(f"source kind {kind.kind!r} is registered already (by {_KINDS[kind.kind].model.__name__})")
    _KINDS[kind.kind] = kind
    return kind


def kinds() -> tuple[SourceKind, ...]:
    return tuple(_KINDS.values())


def kind_of(name: str) -> SourceKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(f"unknown source kind {name!r}; supported: {', '.join(_KINDS)}") from None


def splits_rejects(source: BaseSource) -> bool:
    """Whether a source's days are split into valid rows and rejects (a rejects asset, a reject-rate check that
    gates the load): with a contract, or when its kind parses rows, whose parse errors must not vanish."""
    return source.contract is not None or kind_of(source.kind).parses


def models() -> tuple[type[BaseSource], ...]:
    return tuple(kind.model for kind in kinds())


def union_of(source_models: tuple[type[BaseSource], ...]) -> Any:
    """The models as one union tagged by `kind`, as a sources file's `sources` validate (with `models()`)."""
    return Annotated[Union[source_models], Field(discriminator="kind")]  # noqa: UP007 - a union of a tuple built at run time


def discriminator_tags() -> frozenset[str]:
    """Every tag of a tagged union in the registered models (the kinds, nested ones such as `auth.type`): pydantic
    puts the chosen tag into an error's location, where a reader expects only field names."""
    return _tags(models())


@functools.cache
def _tags(source_models: tuple[type[BaseSource], ...]) -> frozenset[str]:
    tags: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            tags.update(node.get("discriminator", {}).get("mapping", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(pydantic.TypeAdapter(list[union_of(source_models)]).json_schema())
    return frozenset(tags)


for _kind in (sql.KIND, rest.KIND, files.KIND, nats.KIND, rabbitmq.KIND, google_sheets.KIND, mongodb.KIND, soap.KIND, kafka.KIND):
    register(_kind)
