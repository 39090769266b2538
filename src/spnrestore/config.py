"""Configuration: the defaults of ``config/schema.yaml`` < ``config/config.yaml`` < ``.env`` < process
environment < ``--config``.

The drive keys have upper-case names in ``.env`` and the environment
(``EXTERNAL_DRIVE``, ``ORIGINAL_IMAGES_DIR``, ``COMPRESSED_IMAGES_DIR``,
``SPN_IMAGES_DIR``, ``QUALITY_LEVELS``) and lower-case names in the YAML file
and on the command line (both spellings work with ``--config``). Every error
names the key, where its value came from, the value and the fix.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping

import yaml
from dotenv import dotenv_values

from .errors import ConfigError

ENV_KEYS = {
    "EXTERNAL_DRIVE": "external_drive",
    "ORIGINAL_IMAGES_DIR": "original_images_dir",
    "COMPRESSED_IMAGES_DIR": "compressed_images_dir",
    "SPN_IMAGES_DIR": "spn_images_dir",
    "QUALITY_LEVELS": "quality_levels",
}
DEMO_DIR = ".demo"
#: The schema of the workflow's configuration: every key with its default and its description, once.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


#: YAML's safe loader, libyaml's where PyYAML has it (the same values, parsed about 10x faster).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping; a syntax error names the file and the line."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}). Fix the syntax.") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(data).__name__}.")
    return data


def parse_quality_levels(text: str, source: str) -> list[int]:
    """Parse ``"90,60,30"`` into ``[90, 60, 30]``; errors name the source and the bad item."""
    items = [item.strip() for item in str(text).split(",") if item.strip()]
    if not items:
        raise ConfigError(f"QUALITY_LEVELS ({source}) is empty. Set it to comma-separated JPEG qualities, e.g. 90,60,30.")
    levels = []
    for item in items:
        try:
            levels.append(int(item))
        except ValueError:
            raise ConfigError(
                f"QUALITY_LEVELS ({source}) = {text!r}: {item!r} is not an integer. "
                "Use comma-separated integers between 1 and 100, e.g. 90,60,30."
            ) from None
    return levels


def _from_env_mapping(values: Mapping[str, str | None], source: str, strict: bool) -> dict:
    """Config entries from upper-case ``values``; unknown keys are errors when ``strict``."""
    out = {}
    for key, value in values.items():
        if key not in ENV_KEYS:
            if strict:
                raise ConfigError(
                    f"{source}: unknown key {key!r}. Known keys: {', '.join(ENV_KEYS)}. "
                    "Remove it or correct its spelling (see .env.example)."
                )
            continue
        if value is None:
            raise ConfigError(f"{source}: key {key} has no value. Write it as {key}=VALUE or remove the line.")
        name = ENV_KEYS[key]
        out[name] = parse_quality_levels(value, source) if name == "quality_levels" else value
    return out


def with_defaults(schema: Mapping, value: Any) -> Any:
    """``value`` with the schema's ``default`` for every key it lacks, in nested objects too (a missing or None
    object counts as {}); a value of the wrong kind is returned as it is, for validation to report. The one
    way defaults are applied, to the workflow's configuration and to the training settings alike."""
    props = schema.get("properties")
    if props is None or not (value is None or isinstance(value, Mapping)):
        return value
    given = dict(value or {})
    out = {k: with_defaults(s, given[k] if k in given else copy.deepcopy(s.get("default"))) for k, s in props.items()
           if k in given or "default" in s or "properties" in s}
    return {**out, **{k: v for k, v in given.items() if k not in props}}


def default_config(schema_path: str | os.PathLike | None = None) -> dict:
    """The workflow's configuration with nothing overridden: every key at its schema default."""
    return with_defaults(load_yaml(schema_path or SCHEMA_PATH), {})


def _merge(base: dict, update: Mapping, sources: dict, source: str, prefix: str = "") -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, sources, source, f"{prefix}{key}.")
        else:
            base[key] = copy.deepcopy(value)
            sources[f"{prefix}{key}"] = source


def _coerce(value: Any, schema: Mapping) -> Any:
    """Turn strings into the schema's scalar type where they parse (Snakemake passes nested
    ``--config`` values as strings); anything else is left for validation to report."""
    kind = schema.get("type")
    if isinstance(value, Mapping):
        props = schema.get("properties", {})
        return {k: _coerce(v, props.get(k, {})) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce(v, schema.get("items", {})) for v in value]
    if isinstance(value, str):
        kinds = kind if isinstance(kind, list) else [kind]
        if "null" in kinds and value.lower() in ("null", "none", "~"):
            return None
        for k in kinds:
            try:
                if k == "integer":
                    return int(value)
                if k == "number":
                    return float(value)
            except ValueError:
                continue
            if k == "boolean" and value.lower() in ("true", "false"):
                return value.lower() == "true"
        if kind is None:  # free-form settings: numbers, then booleans and null as YAML reads them
            for number in (int, float):
                try:
                    return number(value)
                except ValueError:
                    pass
            parsed = yaml.safe_load(value) if value.strip() else value
            return parsed if parsed is None or isinstance(parsed, bool) else value
    return value


def _normalise_overrides(overrides: Mapping) -> dict:
    """``--config`` entries: accept the upper-case .env names too, and the quality levels written as on the
    command line (``quality_levels=90,60,30`` or ``QUALITY_LEVELS=90,60,30``; one quality alone too)."""
    out = {}
    for key, value in overrides.items():
        name = ENV_KEYS.get(key, key)
        if name == "quality_levels" and isinstance(value, (str, int)) and not isinstance(value, bool):
            value = parse_quality_levels(str(value), f"--config {key}")
        out[name] = value
    return out


def _schema_error_message(error: "jsonschema.ValidationError", sources: Mapping[str, str]) -> str:
    parts = [p for p in error.absolute_path if not isinstance(p, int)]
    path = ".".join(str(p) for p in parts)
    source = sources.get(path) or sources.get(path.split(".")[0]) or "config/config.yaml"
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        name = f"{path}.{extra[0]}" if path else extra[0]
        source = sources.get(name, "config/config.yaml")
        return (
            f"unknown config key {name!r} (from {source}). Known keys{' under ' + path if path else ''}: "
            f"{', '.join(known)}. Remove the key or fix its spelling."
        )
    if error.validator == "uniqueItems":
        return f"config key {path!r} (from {source}) = {error.instance!r} has duplicated values. List each value once."
    hint = error.schema.get("description", "")
    return (
        f"config key {path or '(top level)'!r} (from {source}) = {error.instance!r}: {error.message}."
        + (f" Expected: {hint}" if hint else "")
    )


def merge_layers(
    base: Mapping,
    schema: Mapping,
    dotenv_path: str | os.PathLike | None = ".env",
    environ: Mapping[str, str] | None = None,
    overrides: Mapping | None = None,
) -> tuple[dict, dict[str, str]]:
    """The configuration layers merged (``config.yaml`` < ``.env`` < the environment < ``--config``), not yet
    validated, and where each key given came from (for the error messages of :func:`validated`).

    Args:
        base: the parsed ``config/config.yaml``.
        schema: the parsed ``config/schema.yaml`` (JSON schema 2020-12; it types the ``--config`` values).
        dotenv_path: ``.env`` file to read if it exists (None: none).
        environ: process environment (only the upper-case keys of ENV_KEYS are read).
        overrides: ``snakemake --config`` entries.
    """
    config = copy.deepcopy(dict(base))
    sources: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        values = dotenv_values(dotenv_path)
        _merge(config, _from_env_mapping(values, f"{dotenv_path}", strict=True), sources, str(dotenv_path))
    if environ is not None:
        present = {k: environ[k] for k in ENV_KEYS if k in environ}
        _merge(config, _from_env_mapping(present, "environment", strict=False), sources, "environment")
    if overrides:
        _merge(config, _coerce(_normalise_overrides(overrides), schema), sources, "--config")
    return config, sources


def validated(config: Mapping, schema: Mapping, sources: Mapping[str, str]) -> dict:
    """``config`` (from :func:`merge_layers`) with the schema's defaults, validated against ``schema``: a new
    dict, or a ConfigError naming the key, its source, its value and the fix."""
    import jsonschema  # here: a dry-run whose configuration was validated before never imports it

    config = with_defaults(schema, config)
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_schema_error_message(errors[0], sources))
    return config
