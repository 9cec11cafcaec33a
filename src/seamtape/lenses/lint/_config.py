"""Lint configuration: defaults from the rules, overrides from TOML, checked by a JSON schema.

It lives in ``[tool.seamtape.lint]`` of a ``pyproject.toml`` or in ``[lint]`` of a
``seamtape.toml``::

    [tool.seamtape.lint.rules.budget-cost]
    max_usd = 0.50
    severity = "critical"

    [tool.seamtape.lint.rules.tool-policy]
    deny = ["shell", "delete_*"]
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from seamtape._errors import LintConfigError

from ._findings import SEVERITIES
from ._registry import RULES

CONFIG_FILES = ("seamtape.toml", "pyproject.toml")


def schema() -> dict[str, Any]:
    """The JSON schema a lint configuration must satisfy (built from the rules' parameters)."""
    rules: dict[str, Any] = {}
    for rule in RULES.values():
        props: dict[str, Any] = {
            "enabled": {"type": "boolean"},
            "severity": {"enum": list(SEVERITIES)},
        }
        props.update({name: p.schema for name, p in rule.params.items()})
        rules[rule.id] = {"type": "object", "additionalProperties": False, "properties": props}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "rules": {"type": "object", "additionalProperties": False, "properties": rules}
        },
    }


class Config:
    """Every rule's settings: ``enabled``, ``severity`` and its parameters."""

    def __init__(self, overrides: Mapping[str, Any] | None = None, *, source: str = "") -> None:
        self.source = source
        doc = dict(overrides or {})
        validate(doc, source or "lint configuration")
        self.rules: dict[str, dict[str, Any]] = {}
        given = doc.get("rules", {})
        for rule in RULES.values():
            settings: dict[str, Any] = {"enabled": True, "severity": rule.severity}
            settings.update({n: copy.deepcopy(p.default) for n, p in rule.params.items()})
            settings.update(given.get(rule.id, {}))
            self.rules[rule.id] = settings

    def __getitem__(self, rule_id: str) -> dict[str, Any]:
        return self.rules[rule_id]

    def enabled(self, rule_id: str) -> bool:
        return bool(self.rules[rule_id]["enabled"])

    def severity(self, rule_id: str) -> str:
        return str(self.rules[rule_id]["severity"])

    def to_dict(self) -> dict[str, Any]:
        return {"rules": copy.deepcopy(self.rules)}


def validate(doc: Mapping[str, Any], where: str) -> None:
    """Raise one ``LintConfigError`` naming the first bad key, or return."""
    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(doc)))
    if error is None:
        return
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise LintConfigError(f"{where}: unknown key {key!r} (known here: {', '.join(known)})")
    raise LintConfigError(f"{where}: {path or 'the configuration'}: {error.message}")


def load(path: str | os.PathLike[str]) -> Config:
    """The configuration in ``path``: a ``pyproject.toml`` ([tool.seamtape.lint]) or any other
    TOML file ([lint], or the whole file when it has no such table)."""
    file = Path(path)
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LintConfigError(f"{file}: no such configuration file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LintConfigError(f"{file}: cannot read the configuration: {exc}") from None
    if file.name == "pyproject.toml":
        section = doc.get("tool", {}).get("seamtape", {}).get("lint", {})
        where = f"{file} [tool.seamtape.lint]"
    elif "lint" in doc:
        section, where = doc["lint"], f"{file} [lint]"
    else:
        section, where = doc, str(file)
    if not isinstance(section, dict):
        raise LintConfigError(f"{where}: must be a table")
    return Config(section, source=where)


def discover(start: str | os.PathLike[str] = ".") -> Config:
    """The configuration found from ``start`` upward: the first ``seamtape.toml``, or the first
    ``pyproject.toml`` with a [tool.seamtape.lint] table; the defaults when there is none."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        for name in CONFIG_FILES:
            candidate = folder / name
            if not candidate.is_file():
                continue
            if name == "pyproject.toml":
                try:
                    doc = tomllib.loads(candidate.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                    continue  # someone else's broken pyproject is not ours to report
                if "lint" not in doc.get("tool", {}).get("seamtape", {}):
                    continue
            return load(candidate)
    return Config()


def resolve(config: Config | Mapping[str, Any] | str | os.PathLike[str] | None) -> Config:
    """A ``Config`` from what a caller passed: one, a mapping, a file, or None (the defaults)."""
    if isinstance(config, Config):
        return config
    if config is None:
        return Config()
    if isinstance(config, Mapping):
        return Config(config)
    return load(config)
