"""Policy gates: tool allow/deny, undeclared tools, argument schemas, URL hosts, sandbox paths."""

from __future__ import annotations

import fnmatch
import functools
import json
import posixpath
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from .._config import Config
from .._findings import Finding
from .._registry import STRINGS, Param, rule
from .._trace import Call, Trace
from ._common import (
    _delegates,
    _finding,
)


@rule(
    "tool-policy",
    "policy",
    "critical",
    "a call of a tool that `deny` names, or, when `allow` is set, that it does not name "
    "(glob patterns)",
    allow=Param([], STRINGS, "tools that may be called; empty: every tool"),
    deny=Param([], STRINGS, "tools that must never be called"),
)
def tool_policy(trace: Trace, cfg: Config) -> Iterator[Finding]:
    params = cfg["tool-policy"]
    for call in trace.calls:
        if _delegates(call.name, params["deny"]):
            why = "is denied"
        elif params["allow"] and not _delegates(call.name, params["allow"]):
            why = "is not on the allow list"
        else:
            continue
        yield _finding(
            cfg, "tool-policy", f"the model called {call.name}, which {why}", [call.step], call.key
        )


@rule(
    "undeclared-tool",
    "policy",
    "critical",
    "the model calls a tool that the same request did not declare",
)
def undeclared_tool(trace: Trace, cfg: Config) -> Iterator[Finding]:
    for call in trace.calls:
        if call.declared is None:
            yield _finding(
                cfg,
                "undeclared-tool",
                f"the model called {call.name}, which the request did not declare",
                [call.step],
                call.key,
            )


def schema_error(call: Call) -> str:
    """Why a call's arguments fail the schema its request declared, or ""."""
    if call.declared is None:
        return ""
    if call.call.raw_arguments is not None:
        return "the arguments are not a JSON object"
    if not call.declared.schema:
        return ""
    dump = functools.partial(json.dumps, sort_keys=True, separators=(",", ":"), default=str)
    return _schema_problem(dump(call.declared.schema), dump(call.call.arguments))


@functools.lru_cache(maxsize=4096)
def _schema_problem(schema_json: str, arguments_json: str) -> str:
    """Cached: a guard re-reads the whole run before every request."""
    schema, arguments = json.loads(schema_json), json.loads(arguments_json)
    try:
        validator_class = jsonschema.validators.validator_for(
            schema, default=jsonschema.Draft202012Validator
        )
        error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(arguments))
    except (jsonschema.exceptions.SchemaError, TypeError):
        return ""  # a schema the request declared but no validator reads is not the call's fault
    if error is None:
        return ""
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" (at {where})" if where else "")


@rule(
    "tool-schema",
    "policy",
    "warn",
    "a call's arguments fail the JSON schema that the same request declared for the tool",
)
def tool_schema(trace: Trace, cfg: Config) -> Iterator[Finding]:
    for call in trace.calls:
        problem = schema_error(call)
        if problem:
            yield _finding(
                cfg,
                "tool-schema",
                f"{call.name} was called with arguments that fail its schema: {problem}",
                [call.step],
                call.key,
            )


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(argument name, string value) for every string inside a call's arguments."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)


@rule(
    "url-host",
    "policy",
    "critical",
    "a URL in a call's arguments names a host that `allowed_hosts` does not match (off while "
    "`allowed_hosts` is empty)",
    allowed_hosts=Param([], STRINGS, "host names or glob patterns, e.g. *.example.com"),
)
def url_host(trace: Trace, cfg: Config) -> Iterator[Finding]:
    allowed = [h.lower() for h in cfg["url-host"]["allowed_hosts"]]
    if not allowed:
        return
    for call in trace.calls:
        for _, text in _strings(call.call.arguments):
            parts = urlsplit(text.strip())
            if (
                parts.scheme.lower() not in ("http", "https", "ws", "wss", "ftp")
                or not parts.netloc
            ):
                continue
            host = (parts.hostname or "").lower()
            if not any(fnmatch.fnmatchcase(host, pattern) for pattern in allowed):
                yield _finding(
                    cfg,
                    "url-host",
                    f"{call.name} was given a URL on {host}, which is not an allowed host",
                    [call.step],
                    f"{call.name} {host}",
                )


_PATH_KEYS = ["path", "file", "filename", "filepath", "dir", "directory", "cwd", "dest", "src"]


@rule(
    "sandbox-path",
    "policy",
    "critical",
    "a path argument (named in `keys`, or ending in _path, _file, _dir) resolves outside "
    "`root` (off while `root` is empty)",
    root=Param("", {"type": "string"}, "the sandbox directory, e.g. /workspace"),
    keys=Param(_PATH_KEYS, STRINGS, "argument names that hold paths"),
)
def sandbox_path(trace: Trace, cfg: Config) -> Iterator[Finding]:
    params = cfg["sandbox-path"]
    root = posixpath.normpath(params["root"]) if params["root"] else ""
    if not root:
        return
    keys = {k.lower() for k in params["keys"]}
    for call in trace.calls:
        for name, text in _strings(call.call.arguments):
            lowered = name.lower()
            if lowered not in keys and not lowered.endswith(("_path", "_file", "_dir")):
                continue
            if text.startswith("~"):
                resolved = text
            else:
                resolved = posixpath.normpath(posixpath.join(root, text))
            inside = resolved == root or resolved.startswith(root.rstrip("/") + "/")
            if not inside:
                yield _finding(
                    cfg,
                    "sandbox-path",
                    f"{call.name} was given {name}={text!r}, outside the sandbox {root}",
                    [call.step],
                    f"{call.name} {name}={text}",
                )
