"""Prompt builders (chat-message lists) for the Generator, Solver, judge and difficulty labeller.

Prompt text is data, not code: each variant is a YAML file in ``toolr0/core/data/prompts/`` (``reference``:
faithful to spec §4/§5.4/§6.5/§7.1; ``compact``: short, for small models;
``compact_noexample``: compact without the format illustration, for structured decoding; ``compact_named``: that,
with placeholder names so the model names parameters instead of copying a literal one; ``answer_first``: tools and
gold calls first, then the question that states their values, ``generator.order: answer_first``). Users pass their own file path.
The ``solver`` section holds every text the Solver is sent in either format (``system``, ``user`` with
``{question}``/``{tools}``, ``native_system``, ``native_reason_first``, ``native_user`` with ``{question}``); a
key a variant leaves out comes from the reference variant.
Templates use ``{name}`` placeholders substituted in one pass; any other brace is literal, so JSON examples are
written with plain quotes. A spec with ``num_calls`` 0 (a no-call task) uses the generator section's
``no_call_system`` / ``no_call_user`` pair (a variant without them borrows the reference variant's pair).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from toolr0.core.references import Reference, reference_turns
from toolr0.core.schema import Tool, ToolCall, normalise_tool, tools_json
from toolr0.core.spec import TaskSpec
from toolr0.core.yamlfile import parse_yaml, read_user_file
from toolr0.errors import ConfigError

BUILTIN_VARIANTS = ("reference", "compact", "compact_noexample", "compact_named", "answer_first")
#: Block orders of a Generator completion: the paper's (question, tools, calls) or answer-first (tools, calls,
#: then the question, written knowing every value it must state; not in the paper).
GENERATOR_ORDERS = ("question_first", "answer_first")
GENERATOR_PLACEHOLDERS = {"domain", "context_type", "menu_size", "num_calls", "context_note"}
REQUIRED_GENERATOR_PLACEHOLDERS = {"domain", "menu_size", "num_calls"}
REQUIRED_NO_CALL_PLACEHOLDERS = {"domain", "menu_size"}  # the call count of a no-call task is always 0
NO_CALL_KEYS = ("no_call_system", "no_call_user")
SECTION_PLACEHOLDERS = {
    "generator": GENERATOR_PLACEHOLDERS,
    "solver": set(),
    "judge": {"question", "tools", "calls"},
    "difficulty": {"question", "tools", "calls"},
}
#: Solver templates with placeholders, all required (every other solver key is plain text): key -> names.
#: ``user`` is the reference format's user message, the menu as ``tools_json``; ``native_user`` is the native
#: format's user message (the menu travels to the chat template as ``tools=``, so no ``{tools}``).
SOLVER_TEMPLATES = {"user": {"question", "tools"}, "native_user": {"question"}}
SECTION_KEYS_TOP = ("generator", "solver", "judge", "difficulty")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_SECTION_KEYS = {
    "generator": {"system", "user", "context_notes", "order", *NO_CALL_KEYS},
    "solver": {"system", "user", "native_system", "native_user", "native_reason_first"},
    "judge": {"system", "user"},
    "difficulty": {"system", "user"},
}


class PromptConfig(BaseModel):
    """Which prompt variants the roles use (`prompts:` section of the config tree)."""

    model_config = ConfigDict(extra="forbid")

    generator_variant: str = Field(
        "reference",
        description="Generator prompt: 'reference' (faithful), 'compact' (small models), 'compact_noexample' "
        "or 'compact_named' (structured decoding) or a YAML path.",
    )
    solver_variant: str = Field(
        "reference",
        description="Variant (name or YAML path) whose solver/judge/difficulty sections are used.",
    )
    solver_format: Literal["reference", "native"] = Field(
        "reference",
        description="How the Solver is prompted and read everywhere (pass@K, cross-verification, Solver GRPO, "
        "solve, eval): 'reference' = the paper's <think>/<tool_call_answer> prompt (spec §7.1); 'native' = the "
        "model's own chat template with tools= and its tool-call reply (docs/solver_format.md).",
    )
    solver_reason_first: bool = Field(
        False, description="Native format only: ask for a short <think> before the calls (then required)."
    )


@dataclass(frozen=True)
class PromptVariant:
    """One loaded variant: a name and its sections (section → key → text)."""

    name: str
    description: str = ""
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""

    def section(self, name: str) -> dict[str, Any]:
        """A section of this variant, falling back to the packaged reference variant when absent."""
        if name in self.sections:
            return self.sections[name]
        if self.name == "reference":
            raise ConfigError(f"{self.source}: missing section '{name}'")
        return load_prompt_variant("reference").section(name)


def _fail(source: str, where: str, msg: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {msg}")


def _validate(data: Any, source: str) -> PromptVariant:
    if not isinstance(data, dict):
        raise _fail(source, "<top>", "expected a mapping with a 'generator' section")
    allowed_top = {"name", "description", *SECTION_KEYS_TOP}
    for key in data:
        if key not in allowed_top:
            raise _fail(source, str(key), f"unknown key (allowed: {', '.join(sorted(allowed_top))})")
    if not any(s in data for s in SECTION_KEYS_TOP):  # sections left out fall back to the reference variant
        raise _fail(source, "generator", "missing section")
    sections: dict[str, dict[str, Any]] = {}
    for sec in SECTION_KEYS_TOP:
        if sec not in data:
            continue
        body = data[sec]
        if not isinstance(body, dict):
            raise _fail(source, sec, "expected a mapping")
        for key, value in body.items():
            if key not in _SECTION_KEYS[sec]:
                if (sec, key) == ("judge", "retry_suffix"):  # never read; the judge retries with the config's
                    raise _fail(source, "judge.retry_suffix", "was removed; use rewards.judge_retry_suffix")
                raise _fail(
                    source, f"{sec}.{key}", f"unknown key (allowed: {', '.join(sorted(_SECTION_KEYS[sec]))})"
                )
            if key == "order":
                if value not in GENERATOR_ORDERS:
                    raise _fail(source, f"{sec}.{key}", f"expected one of {', '.join(GENERATOR_ORDERS)}")
            elif key == "context_notes":
                if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()
                ):
                    raise _fail(source, f"{sec}.{key}", "expected a mapping context_type -> text")
            elif not isinstance(value, str):
                raise _fail(source, f"{sec}.{key}", "expected a string")
            else:
                allowed = SOLVER_TEMPLATES.get(key, set()) if sec == "solver" else SECTION_PLACEHOLDERS[sec]
                used = set(_PLACEHOLDER.findall(value))
                unknown = sorted(used - allowed)
                if unknown:
                    raise _fail(source, f"{sec}.{key}", f"unknown placeholder {{{unknown[0]}}}")
                if sec == "solver" and allowed - used:
                    raise _fail(source, f"{sec}.{key}", f"must use placeholder(s) {sorted(allowed - used)}")
        for key in () if sec == "solver" else ("system", "user"):  # a solver key left out: the reference's
            if key not in body:
                raise _fail(source, f"{sec}.{key}", "missing")
        if sec == "generator":
            used = set(_PLACEHOLDER.findall(body["system"] + body["user"]))
            missing = REQUIRED_GENERATOR_PLACEHOLDERS - used
            if missing:
                raise _fail(source, "generator.system", f"must use placeholder(s) {sorted(missing)}")
            given = [k for k in NO_CALL_KEYS if k in body]
            if given and len(given) < len(NO_CALL_KEYS):
                absent = next(k for k in NO_CALL_KEYS if k not in body)
                raise _fail(source, f"generator.{absent}", f"missing (give it with {given[0]})")
            if given:
                used = set(_PLACEHOLDER.findall(body["no_call_system"] + body["no_call_user"]))
                missing = REQUIRED_NO_CALL_PLACEHOLDERS - used
                if missing:
                    raise _fail(
                        source, "generator.no_call_system", f"must use placeholder(s) {sorted(missing)}"
                    )
        sections[sec] = dict(body)
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise _fail(source, "name", "expected a string")
    desc = data.get("description", "")
    return PromptVariant(name=name, description=str(desc), sections=sections, source=source)


@lru_cache(maxsize=64)
def _load_cached(name_or_path: str) -> PromptVariant:
    if name_or_path in BUILTIN_VARIANTS:
        source = f"{name_or_path}.yaml"
        text = (resources.files("toolr0.core") / "data" / "prompts" / source).read_text(encoding="utf-8")
    else:
        source = str(Path(name_or_path))
        if not Path(name_or_path).is_file():
            raise ConfigError(
                f"{source}: prompt variant not found (built-in variants: {', '.join(BUILTIN_VARIANTS)}, or a YAML path)"
            )
        text = read_user_file(name_or_path, "prompt variant")
    data = parse_yaml(text, source)
    return _validate(data, source)


def load_prompt_variant(name_or_path: str | Path = "reference") -> PromptVariant:
    """Load a built-in variant by name or a user YAML file; a bad file raises a one-line ConfigError."""
    return _load_cached(str(name_or_path))


def _fill(template: str, values: dict[str, str]) -> str:
    """One-pass substitution of known ``{name}`` placeholders; inserted text is never re-scanned."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _variant(variant: str | PromptVariant) -> PromptVariant:
    return variant if isinstance(variant, PromptVariant) else load_prompt_variant(variant)


def generator_values(spec: TaskSpec, variant: str | PromptVariant = "reference") -> dict[str, str]:
    """The placeholder values a spec fills into a Generator template."""
    notes = _variant(variant).section("generator").get("context_notes", {}) or {}
    return {
        "domain": spec.domain,
        "context_type": spec.context_type,
        "menu_size": str(spec.menu_size),
        "num_calls": str(spec.num_calls),
        "context_note": notes.get(spec.context_type, ""),
    }


def generator_order(variant: str | PromptVariant = "reference") -> str:
    """The block order a Generator variant asks for (``generator.order``; the paper's ``question_first``)."""
    return str(_variant(variant).section("generator").get("order", "question_first"))


def generator_stop(variant: str | PromptVariant = "reference") -> tuple[str, ...]:
    """The stop string of a Generator completion: the close tag of its last block."""
    return ("</question>",) if generator_order(variant) == "answer_first" else ("</tool_call_answer>",)


def _generator_pair(sec: dict[str, Any], num_calls: int) -> tuple[str, str]:
    """The (system, user) templates of a spec's kind: ``no_call_*`` for ``num_calls`` 0 (borrowed from the
    reference variant when the variant has none)."""
    if int(num_calls) == 0:
        if "no_call_system" not in sec:
            sec = load_prompt_variant("reference").section("generator")
        return sec["no_call_system"], sec["no_call_user"]
    return sec["system"], sec["user"]


def generator_messages(
    spec: TaskSpec, variant: str | PromptVariant = "reference", references: Sequence[Reference] = ()
) -> list[dict[str, str]]:
    """System + user messages asking the Generator for one task that follows ``spec`` (spec §4); for
    ``num_calls`` 0, a request in the domain that none of the menu's tools can serve, gold ``[]``.
    ``references`` (not in the paper, ``generator.references``): earlier tasks of the Generator's own, shown as
    earlier turns (the user template filled with each reference's domain and counts, then its blocks)."""
    sec = _variant(variant).section("generator")
    values = generator_values(spec, variant)
    system, user = _generator_pair(sec, spec.num_calls)

    def user_for(ref: Reference) -> str:
        ref_values = dict(values, domain=ref.domain, menu_size=str(ref.menu_size), num_calls=str(ref.num_calls))
        return _fill(_generator_pair(sec, ref.num_calls)[1], ref_values)

    return [
        {"role": "system", "content": _fill(system, values)},
        *reference_turns(references, user_for),
        {"role": "user", "content": _fill(user, values)},
    ]


def _as_tools(tools: Any) -> list[Tool]:
    if not isinstance(tools, list):
        return []
    out = []
    for t in tools:
        tool = t if isinstance(t, Tool) else normalise_tool(t)
        if tool is not None:
            out.append(tool)
    return out


def _calls_json(calls: Any) -> str:
    rows = []
    for c in calls if isinstance(calls, list) else []:
        rows.append(c.to_dict() if isinstance(c, ToolCall) else c)
    return json.dumps(rows, ensure_ascii=False, default=str)


def _solver_text(variant: str | PromptVariant, key: str) -> str:
    """A key of the variant's solver section; a key the variant leaves out comes from the reference variant."""
    text = _variant(variant).section("solver").get(key)
    return text if isinstance(text, str) else load_prompt_variant("reference").section("solver")[key]


def solver_user_message(question: str, tools: Any, variant: str | PromptVariant = "reference") -> str:
    """The reference format's Solver user message (spec §6.4/§6.6): ``solver.user`` with ``{question}`` and
    ``{tools}`` (the menu as :func:`schema.tools_json`) filled; used for r_diff, verification, training and eval."""
    values = {"question": question, "tools": tools_json(_as_tools(tools))}
    return _fill(_solver_text(variant, "user"), values)


def solver_system_prompt(variant: str | PromptVariant = "reference") -> str:
    """The reference format's Solver system prompt (``solver.system``, spec §7.1)."""
    return _solver_text(variant, "system")


def solver_native_system(variant: str | PromptVariant = "reference", reason_first: bool = True) -> str:
    """The native format's system text: ``solver.native_reason_first`` (the "reason first" switch) or
    ``solver.native_system`` (empty: no system message; the chat template adds the tools either way)."""
    return _solver_text(variant, "native_reason_first" if reason_first else "native_system")


def solver_native_user(question: str, variant: str | PromptVariant = "reference") -> str:
    """The native format's user message: ``solver.native_user`` with ``{question}`` filled."""
    return _fill(_solver_text(variant, "native_user"), {"question": question})


def solver_messages(
    question: str, tools: Any, variant: str | PromptVariant = "reference"
) -> list[dict[str, str]]:
    """Solver chat of the reference format: the §7.1 system prompt and the ``solver.user`` message.

    ``tools`` may be :class:`Tool` objects or raw tools in any form :func:`schema.normalise_tool` accepts.
    """
    return [
        {"role": "system", "content": solver_system_prompt(variant)},
        {"role": "user", "content": solver_user_message(question, tools, variant)},
    ]


def judge_messages(
    question: str, tools: Any, calls: Any, variant: str | PromptVariant = "reference"
) -> list[dict[str, str]]:
    """Solver-as-judge chat of spec §5.4; the user message ends with ``Score (1-5):``."""
    return _task_review_messages("judge", question, tools, calls, variant)


def difficulty_label_messages(
    question: str, tools: Any, calls: Any, variant: str | PromptVariant = "reference"
) -> list[dict[str, str]]:
    """The reference code's easy|medium|hard judge (spec §6.5), for ``difficulty_source = llm|both``."""
    return _task_review_messages("difficulty", question, tools, calls, variant)


def _task_review_messages(
    section: str, question: str, tools: Any, calls: Any, variant: str | PromptVariant
) -> list[dict[str, str]]:
    """A chat that shows the Solver a whole task (question, menu, gold calls) using one prompt section."""
    sec = _variant(variant).section(section)
    values = {"question": question, "tools": tools_json(_as_tools(tools)), "calls": _calls_json(calls)}
    return [
        {"role": "system", "content": sec["system"]},
        {"role": "user", "content": _fill(sec["user"], values)},
    ]


_ROLE_NAMES = {"user": "User", "agent": "Agent", "assistant": "Agent", "tool": "Tool", "system": "System"}


def render_conversation(turns: Any) -> str:
    """Render API-Bank-style turns as ``# Conversation\\nUser: ...\\nAgent: ...`` (the Generator's multi_turn form).

    Roles user/agent/assistant/tool (assistant turns are earlier calls, shown as Agent; tool turns are outputs).
    A plain string is returned unchanged.
    """
    if isinstance(turns, str):
        return turns
    lines = ["# Conversation"]
    for turn in turns if isinstance(turns, list) else []:
        if not isinstance(turn, dict):
            continue
        role = str(turn.get("role", "user")).lower()
        content = turn.get("content", "")
        if not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False, default=str)
        lines.append(f"{_ROLE_NAMES.get(role, role.capitalize())}: {content.strip()}")
    return "\n".join(lines)


def template_texts(variant: str | PromptVariant) -> list[str]:
    """Every template string of a variant (placeholders unfilled): the source of the echo detector's n-grams."""
    v = _variant(variant)
    out: list[str] = []
    for sec in v.sections.values():
        for key, value in sec.items():
            if key == "order":  # a setting, not text shown to the model
                continue
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, dict):
                out.extend(x for x in value.values() if isinstance(x, str))
    return out
