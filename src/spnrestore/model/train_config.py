"""The training configuration: defaults and rules in ``training_schema.yaml``, resolved and validated here.

Imports neither torch nor tqdm: the workflow resolves training settings while Snakemake plans. The sizes of
the networks (``model``, ``discriminator``) and the loss weights take their defaults from the schema too
(:func:`defaults`), so every default is written once.
"""

from __future__ import annotations

import copy
import math
import re
from functools import cache
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from ..config import with_defaults
from ..errors import ConfigError

TRAINING_SCHEMA_PATH = Path(__file__).with_name("training_schema.yaml")
WHERE = "training config"


@cache
def training_schema() -> dict:
    """The parsed ``training_schema.yaml`` (read once; do not modify it)."""
    return yaml.safe_load(TRAINING_SCHEMA_PATH.read_text(encoding="utf-8"))


def _section_schema(section: str | None) -> dict:
    schema = training_schema()
    return schema if section is None else schema["properties"][section]


def defaults(section: str | None = None) -> dict:
    """The default training configuration, or that of one nested ``section`` (``model``, ``loss_weights``,
    ``discriminator``)."""
    return with_defaults(_section_schema(section), {})


# Integers are ints (not bools nor 2.0), numbers finite ints or floats (not bools): as the networks need them.
_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many({
    "integer": lambda _, x: isinstance(x, int) and not isinstance(x, bool),
    "number": lambda _, x: isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x),
})
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES)


def _allowed(schema: Mapping) -> str:
    """What a schema allows, in words: ``integer >= 1 or null (steps between ...)``."""
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    bounds = [f"{word} {schema[key]}" for key, word in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                       ("maximum", "<="), ("exclusiveMaximum", "<")) if key in schema]
    what = " ".join(["one of " + ", ".join(map(str, schema["enum"]))] if "enum" in schema else
                    [" or ".join(k for k in kinds if k != "null") or "a value", " and ".join(bounds)]).strip()
    if "minItems" in schema:
        what += f" of {schema['minItems']}..{schema.get('maxItems', 'any')} items ({_allowed(schema.get('items', {}))})"
    if "pattern" in schema:
        what += f" matching {schema['pattern']}"
    what += " or null" if "null" in kinds else ""
    return what + (f" ({schema['description']})" if "description" in schema else "")


def _message(error: jsonschema.ValidationError, where: str, section: str) -> str:
    """A ConfigError message naming the key path (under ``section``), the value and what is allowed."""
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in [section, *error.absolute_path]).strip(".")
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        return (f"{where}: unknown key(s) {', '.join(f'{path}.{k}' if path else k for k in extra)}; allowed"
                f"{' under ' + path if path else ''}: {', '.join(known)}. Remove the key or fix its spelling.")
    return (f"{where}: {path or '(top level)'} = {error.instance!r} is not allowed ({error.message}); "
            f"use {_allowed(error.schema)}.")


def _validated(schema: Mapping, value: Any, where: str, section: str = "") -> dict:
    """``value`` (the config's ``section``, or all of it) with its defaults filled in, validated against
    ``schema``; the first error is a ConfigError."""
    if not (value is None or isinstance(value, Mapping)):
        raise ConfigError(f"{where}: {section or 'the settings'} = {value!r}: expected a mapping of keys to values.")
    out = with_defaults(schema, value)
    errors = sorted(_Validator(schema).iter_errors(out), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise ConfigError(_message(errors[0], where, section))
    return out


def resolve_section(section: str, value: Mapping | None, where: str | None = None) -> dict:
    """One nested section (``model``, ``loss_weights``, ``discriminator``) with its defaults, validated;
    errors name ``where`` (e.g. a checkpoint's ``model_config``), by default the training config's section."""
    return _validated(_section_schema(section), value, where or WHERE, "" if where else section)


def resolve_config(cfg: Mapping | None) -> dict:
    """The training configuration: ``cfg`` over the schema's defaults (nested sections merged key by key),
    validated; ``val_every`` null takes ``checkpoint_every``. Unknown keys and bad values are a ConfigError
    naming the key, the value and what is allowed."""
    out = _validated(training_schema(), cfg, WHERE)
    out["val_every"] = out["val_every"] or out["checkpoint_every"]
    return out


def runtime_keys() -> frozenset[str]:
    """Keys that may change between a killed run and its resumption (``x-runtime`` in the schema): they do
    not change the training trajectory."""
    return frozenset(k for k, s in training_schema()["properties"].items() if s.get("x-runtime"))


def parse_assignment(text: str, where: str = "--set") -> tuple[str, Any]:
    """``KEY=VALUE`` as (``KEY``, VALUE read as YAML; ``2e-4`` is a number too): ``lr=2e-4``, ``model.width=8``,
    ``loss_weights={corr: 1, adv: 0.01}``; anything else is a ConfigError naming ``where``."""
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip() or not all(part.strip() for part in key.split(".")):
        raise ConfigError(f"{where} {text!r}: give KEY=VALUE (KEY a setting, dotted for a nested one: model.width=8).")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} {text!r}: the value is not YAML ({exc}).") from None
    if isinstance(parsed, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", parsed.strip()):
        parsed = float(parsed)  # 2e-4: a number (YAML 1.1 wants 2.0e-4)
    return key.strip(), parsed


def with_overrides(cfg: Mapping | None, assignments: list[tuple[str, Any]]) -> dict:
    """A copy of the (unresolved) configuration ``cfg`` with each (dotted key, value) set in turn:
    ``("model.width", 8)`` sets ``width`` in ``model`` (keeping its other keys), ``("model", {...})``
    replaces the section. The result is validated by :func:`resolve_config` as any configuration."""
    out = copy.deepcopy(dict(cfg or {}))
    for key, value in assignments:
        *parents, last = key.split(".")
        node = out
        for part in parents:
            if not isinstance(node.get(part), Mapping):
                node[part] = {}
            node[part] = dict(node[part])
            node = node[part]
        node[last] = value
    return out
