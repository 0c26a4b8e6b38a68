"""Helpers for tests of the Grafana dashboards in dashboards/: load them, list their queries,
and turn a query into PromQL that the Prometheus HTTP API accepts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from conftest import load_script

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"

Dashboard = dict[str, Any]


def load_dashboards() -> dict[str, Dashboard]:
    """File name (``panicwatch-host.json``) -> the parsed dashboard, for every checked-in one."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def load_generator() -> ModuleType:
    return load_script(DASHBOARDS / "build.py")


def all_panels(dashboard: Dashboard) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels inside rows (collapsed rows hold theirs)."""
    stack = list(reversed(dashboard.get("panels", [])))
    while stack:
        panel = stack.pop()
        yield panel
        stack.extend(reversed(panel.get("panels", [])))


def panel_queries(dashboard: Dashboard) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every query of every panel, in dashboard order."""
    return [(panel["title"], t["expr"])
            for panel in all_panels(dashboard)
            for t in panel.get("targets", [])
            if t.get("expr")]


# Grafana's variable syntaxes: $var, ${var}, ${var:format}, [[var]], [[var:format]].
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::([^}]+))?\}|\[\[(\w+)(?::(\w+))?\]\]")
# What Grafana's `regex` format escapes (its escapeRegex).
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")


def substitute(expr: str, values: Mapping[str, str], *, rate_interval: str = "1m",
               interval: str = "15s", range_: str = "1h") -> str:
    """``expr`` with Grafana's variables replaced, ready for Prometheus' /api/v1/query.

    ``values`` holds the dashboard variables (``{"job": "panicwatch", "instance": ...}``) and
    may override the built-ins ``__rate_interval``, ``__interval`` and ``__range``. Values go
    in verbatim, as Grafana inserts a single-valued variable; ``${var:regex}`` escapes regex
    metacharacters as Grafana's regex format does, and ``${var:raw}`` does not. A variable
    without a value raises KeyError: a dashboard query must not reach Prometheus with a ``$``
    left in it.
    """
    known = {"__rate_interval": rate_interval, "__interval": interval, "__range": range_, **values}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(5)
        if name not in known:
            raise KeyError(f"no value for ${name} in {expr!r}")
        value = known[name]
        if fmt is None or fmt == "raw":
            return value
        if fmt == "regex":
            return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)
        raise ValueError(f"format {fmt!r} of ${name} is not supported")

    return _VARIABLE.sub(replace, expr)
