"""Core data types: tools, tool calls and tasks, and normalisation of every tool-schema form we meet.

Forms accepted by :func:`normalise_tool` (all end up as one internal :class:`Tool`):
- JSON Schema / OpenAI: ``{"name", "description", "parameters": {"type": "object", "properties", "required"}}``,
  optionally wrapped as ``{"type": "function", "function": {...}}``;
- BFCL: the same with ``parameters.type == "dict"``;
- Hammer: flat ``parameters`` ``{param: {"type", "description", "required": bool}}``;
- Generator output: flat ``parameters`` plus a top-level ``"required": [...]``.

The required set is the union of every place ``required`` may live (spec §11). Pure: no engine imports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA_CONTAINER_TYPES = {"object", "dict"}


@dataclass
class ToolCall:
    """One normalised tool call."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": dict(self.arguments)}

    def canonical(self) -> str:
        """Canonical JSON (sorted keys): the exact-match key of spec §5.4 step 4."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, default=str)


@dataclass
class Tool:
    """One normalised tool: JSON-Schema-like properties plus the resolved required list."""

    name: str
    description: str = ""
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)

    def to_json_schema(self) -> dict[str, Any]:
        """The JSON-Schema rendering shown to the Solver everywhere (spec §6.2, §10 item 4)."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": {
                "type": "object",
                "properties": {k: dict(v) for k, v in self.properties.items()},
                "required": list(self.required),
            },
        }


@dataclass
class Task:
    """A tool-calling task: question, tool menu and gold calls (empty gold = no call expected)."""

    question: str
    tools: list[Tool]
    calls: list[ToolCall]
    domain: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "tools": [t.to_json_schema() for t in self.tools],
            "calls": [c.to_dict() for c in self.calls],
            "domain": self.domain,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        tools = [t for t in (normalise_tool(x) for x in d.get("tools", [])) if t is not None]
        calls = [ToolCall(str(c["name"]), dict(c.get("arguments", {}))) for c in d.get("calls", [])]
        return cls(str(d.get("question", "")), tools, calls, str(d.get("domain", "")), dict(d.get("meta", {})))


def _clean_property(spec: Any) -> dict[str, Any]:
    """Keep type/description/enum (and any other schema keys) of one parameter, dropping the per-param flag."""
    if not isinstance(spec, dict):
        return {"type": "string", "description": str(spec) if spec is not None else ""}
    out = {k: v for k, v in spec.items() if k != "required"}
    if "type" not in out:
        out["type"] = "string"
    if "description" not in out:
        out["description"] = ""
    return out


def _is_schema_form(params: dict[str, Any]) -> bool:
    props = params.get("properties")
    if not isinstance(props, dict):
        return False
    if str(params.get("type", "")).lower() in SCHEMA_CONTAINER_TYPES:
        return True
    # A flat menu whose only parameter is literally called "properties" would have a type/description dict there.
    return "type" not in props or not isinstance(props.get("type"), str)


def _string_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int))]
    return []


def required_of(raw_tool: dict[str, Any]) -> list[str]:
    """Union of top-level ``required``, ``parameters.required`` and per-parameter ``"required": true``."""
    req: list[str] = []

    def add(names: list[str]) -> None:
        for n in names:
            if n not in req:
                req.append(n)

    add(_string_list(raw_tool.get("required")))
    params = raw_tool.get("parameters")
    if isinstance(params, dict):
        if _is_schema_form(params):
            add(_string_list(params.get("required")))
            props = params.get("properties", {})
        else:
            if isinstance(params.get("required"), list):
                add(_string_list(params.get("required")))
            props = params
        if isinstance(props, dict):
            add([k for k, v in props.items() if isinstance(v, dict) and v.get("required") is True])
    return req


def normalise_tool(raw: Any) -> Tool | None:
    """Normalise any supported tool form to a :class:`Tool`; ``None`` when it is not a tool at all."""
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("function"), dict):  # OpenAI {"type": "function", "function": {...}}
        raw = raw["function"]
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    params = raw.get("parameters", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return None
    if _is_schema_form(params):
        props_raw = params.get("properties", {})
    else:
        props_raw = {k: v for k, v in params.items() if not (k == "required" and isinstance(v, list))}
    properties = {str(k): _clean_property(v) for k, v in props_raw.items()}
    desc = raw.get("description", "")
    return Tool(
        name=name.strip(),
        description=desc if isinstance(desc, str) else json.dumps(desc, default=str),
        properties=properties,
        required=[r for r in required_of(raw)],
    )


def normalise_tools(raw_tools: Any) -> list[Tool]:
    """Normalise a list of tools, dropping entries that are not tools."""
    if not isinstance(raw_tools, list):
        return []
    return [t for t in (normalise_tool(x) for x in raw_tools) if t is not None]


def tools_json(tools: list[Tool]) -> str:
    """The one JSON rendering of a menu used in every Solver prompt (spec §6.6)."""
    return json.dumps([t.to_json_schema() for t in tools], indent=2, ensure_ascii=False)
