"""How the Solver is prompted and how its reply is read: one object used everywhere the Solver speaks.

Two formats (docs/solver_format.md):

- ``reference`` (spec §7.1, the paper's): a system prompt with the ``<think>`` / ``<tool_call_answer>``
  template, the menu as JSON in the user message; replies parsed by ``core.completions.parse_solver_output``.
- ``native``: the model's own chat template with ``tools=`` (OpenAI function schemas) and the user's question
  as the user message; replies parsed by ``core.native.parse_native_output``. ``reason_first`` adds a short
  system line asking for a ``<think>`` block before the calls (then required, as in spec §7.3).

Every text either format sends is in the ``solver`` section of the prompt variant (``prompts.solver_variant``):
``system`` and ``user`` (reference), ``native_system``, ``native_reason_first`` and ``native_user`` (native).

A native conversation carries its menu as a leading ``{"role": "tools", "tools": [...]}`` entry; every
sampler backend takes it out with :func:`split_tools` and hands it to the chat template (or to the API's
``tools`` field). Pass@K, cross-verification, Solver GRPO, ``toolr0 solve`` and ``toolr0 eval`` all build
their prompts and read replies through :class:`SolverFormat`, so the format is one setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from toolr0.core.completions import SolverParse, parse_solver_output
from toolr0.core.native import openai_tools, parse_native_output, render_native_calls
from toolr0.core.prompts import PromptConfig, solver_messages, solver_native_system, solver_native_user
from toolr0.core.schema import ToolCall

SOLVER_FORMATS: tuple[str, ...] = ("reference", "native")
# The one default of the setting: the config's (`prompts.solver_format`). Every command, scorer and builder
# that takes a format without being given one falls back to this, never to a literal of its own.
DEFAULT_SOLVER_FORMAT: str = PromptConfig.model_fields["solver_format"].default
TOOLS_ROLE = "tools"
REFERENCE_STOP = ("</tool_call_answer>",)


def split_tools(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(chat messages, tool schemas or None): removes the ``tools`` carrier entry of a native conversation."""
    tools: list[dict[str, Any]] | None = None
    rest: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, dict) and m.get("role") == TOOLS_ROLE:
            tools = list(m.get("tools") or [])
        else:
            rest.append(m)
    return rest, tools


@dataclass(frozen=True)
class SolverFormat:
    """The Solver's prompt and reply format. ``variant`` names the prompt variant (name or YAML path) whose
    ``solver`` section holds every text of both formats (system, user template, native system lines)."""

    name: str = DEFAULT_SOLVER_FORMAT
    variant: str = "reference"
    reason_first: bool = False

    def __post_init__(self) -> None:
        if self.name not in SOLVER_FORMATS:
            raise ValueError(f"solver format must be one of {SOLVER_FORMATS}, got {self.name!r}")

    @property
    def native(self) -> bool:
        return self.name == "native"

    @property
    def needs_think(self) -> bool:
        """Accuracy requires a non-empty ``<think>`` (spec §7.3 in the reference format; native: reason_first)."""
        return not self.native or self.reason_first

    @property
    def stop(self) -> tuple[str, ...]:
        """Stop strings of a reply. Native replies end at the template's end-of-turn token, so none."""
        return () if self.native else REFERENCE_STOP

    def messages(self, question: str, tools: Any) -> list[dict[str, Any]]:
        """The Solver conversation for one task (tools raw or ``Tool`` objects)."""
        if not self.native:
            return solver_messages(question, tools, self.variant)
        out: list[dict[str, Any]] = [{"role": TOOLS_ROLE, "tools": openai_tools(tools)}]
        system = solver_native_system(self.variant, self.reason_first)
        if system:
            out.append({"role": "system", "content": system})
        out.append({"role": "user", "content": solver_native_user(question, self.variant)})
        return out

    def parse(self, text: Any, allow_unclosed: bool = False) -> SolverParse:
        """Read one reply. Native: calls however wrapped (``NativeParse``); reference: spec §7.2."""
        if self.native:
            return parse_native_output(text)
        return parse_solver_output(text, allow_unclosed=allow_unclosed)

    def is_no_call(self, parse: SolverParse) -> bool:
        """The reply says "no call" (the right answer to empty gold): ``[]`` in reference, no call in native."""
        if self.native:
            return parse.parsed and not parse.calls and getattr(parse, "wrapper", "none") == "none"
        return parse.empty_answer

    def render_calls(self, calls: list[ToolCall]) -> str:
        """A well-formed reply making exactly ``calls`` (oracle predictions, tests)."""
        if self.native:
            return render_native_calls(calls) if calls else "No tool can serve this request."
        body = json.dumps([c.to_dict() for c in calls], ensure_ascii=False)
        return f"<think>\nGold answer.\n</think>\n<tool_call_answer>{body}</tool_call_answer>"

    @classmethod
    def from_config(cls, prompts_cfg: Any) -> SolverFormat:
        """The format a config's ``prompts`` section asks for (``prompts.PromptConfig``)."""
        return cls(
            name=getattr(prompts_cfg, "solver_format", DEFAULT_SOLVER_FORMAT),
            variant=getattr(prompts_cfg, "solver_variant", "reference"),
            reason_first=bool(getattr(prompts_cfg, "solver_reason_first", False)),
        )

    def describe(self) -> str:
        """One line for summaries: which format, and the prompt it uses."""
        if self.native:
            extra = (", reason first" if self.reason_first else "") + (
                f", variant {self.variant}" if self.variant != "reference" else ""
            )
            return f"native (chat template with tools={extra})"
        return f"reference (spec §7.1 prompt, variant {self.variant})"
