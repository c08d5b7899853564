"""Helpers for the models' configuration dataclasses (one per model, beside the model).

A config field is a *fit* field unless declared with :func:`query_field`: only fit
fields change what ``fit`` learns, so only they key the on-disk model cache. A
query-time field (how many neighbours vote, a search width, a blend weight) can
change without refitting anything.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from recommender.errors import ConfigurationError

_QUERY = "query_time"


def query_field(default: Any) -> Any:
    """A config field read at query time only (changing it refits nothing)."""
    return dataclasses.field(default=default, metadata={_QUERY: True})


def is_query_field(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get(_QUERY))


def fit_key(config: Any) -> dict[str, Any]:
    """The fields of ``config`` that what ``fit`` learns depends on (the cache key)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if not is_query_field(f)}


def config_dict(config: Any) -> dict[str, Any]:
    """Every field of ``config`` (JSON-ready: configs hold only scalars and strings)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def parse_value(raw: str, kind: type, name: str) -> Any:
    """``raw`` (an environment string) as ``kind`` (bool, int, float or str)."""
    try:
        if kind is bool:
            value = raw.strip().lower()
            if value in {"1", "true", "yes", "on"}:
                return True
            if value in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw.strip())
        if kind is float:
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(raw)
            return value
        return kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a valid {kind.__name__}") from None


def field_type(config_class: type, name: str) -> type:
    """The Python type of a config field, from its default (configs hold plain scalars)."""
    for f in dataclasses.fields(config_class):
        if f.name == name:
            return type(f.default)
    raise KeyError(name)


def config_from_dict(config_class: type, values: dict[str, Any]) -> Any:
    """``config_class(**values)`` with every value checked against the field's type."""
    known = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigurationError(f"{config_class.__name__} has no field(s) {', '.join(unknown)}")
    checked = {}
    for name, value in values.items():
        kind = type(known[name].default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            raise ConfigurationError(f"{config_class.__name__}.{name} must be a {kind.__name__}, "
                                     f"got {value!r}")
        checked[name] = value
    return config_class(**checked)
