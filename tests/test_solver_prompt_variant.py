"""The Solver prompt is one YAML file (issue 30 item 4): the ``solver`` section of a prompt variant holds every
text either Solver format sends (reference: ``system``, ``user``; native: ``native_system``,
``native_reason_first``, ``native_user``), validated like the other sections; the defaults render byte for
byte what they rendered before the user templates moved out of Python."""

from __future__ import annotations

import hashlib
import json

import pytest

from toolr0.core.prompts import BUILTIN_VARIANTS, load_prompt_variant, solver_native_system
from toolr0.core.schema import normalise_tool, tools_json
from toolr0.core.solver_format import SolverFormat
from toolr0.errors import ConfigError

TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "city": {"type": "string", "description": "City name"},
            "units": {"type": "string", "enum": ["c", "f"]},
        },
        "required": ["city"],
    },
    {
        "name": "book_table",
        "description": "Book a table",
        "parameters": {"restaurant": {"type": "string"}, "people": {"type": "integer"}},
        "required": ["restaurant"],
    },
]
QUESTIONS = [
    "What is the weather in Paris?",
    "Book {tools} for 4 at {question} café 日本語\n# Conversation\nUser: hi",
]
# sha256 of every built-in variant's Solver conversation in both formats, reason-first off and on, computed on
# the tree before the user templates moved into the variant files (commit 4dbafeb)
DEFAULT_MESSAGES_SHA256 = "e8dbc3baa990a8837ad145ec36684280d3103133b8d6930ccee88917a502fa4f"


def test_default_solver_messages_are_byte_identical_to_before():
    out = {}
    for name in ("reference", "native"):
        for variant in BUILTIN_VARIANTS:
            for reason_first in (False, True):
                for q in QUESTIONS:
                    key = f"{name}/{variant}/{reason_first}/{q[:4]}"
                    out[key] = SolverFormat(name, variant, reason_first).messages(q, TOOLS)
    blob = json.dumps(out, ensure_ascii=False, sort_keys=True)
    assert hashlib.sha256(blob.encode()).hexdigest() == DEFAULT_MESSAGES_SHA256
    # and the parts spelled out: the placeholders of the question are not re-substituted
    menu = tools_json([normalise_tool(t) for t in TOOLS])
    user = SolverFormat("reference").messages(QUESTIONS[1], TOOLS)[1]["content"]
    assert user == f"User request:\n{QUESTIONS[1]}\n\nAvailable tools (JSON):\n{menu}\n"
    native = SolverFormat("native").messages(QUESTIONS[1], TOOLS)
    assert [m["role"] for m in native] == ["tools", "user"] and native[1]["content"] == QUESTIONS[1]
    first = SolverFormat("native", reason_first=True).messages(QUESTIONS[0], TOOLS)
    assert first[1] == {"role": "system", "content": solver_native_system("reference")}
    assert first[1]["content"].startswith("You are a helpful assistant with access to tools. First think")


def test_one_variant_file_changes_everything_the_solver_sees(tmp_path):
    path = tmp_path / "my_solver.yaml"
    path.write_text(
        "name: my_solver\n"
        "solver:\n"
        "  system: Answer in tags.\n"
        '  user: "Tools:\\n{tools}\\nRequest: {question}"\n'
        "  native_system: Use the tools when they fit.\n"
        '  native_user: "Request: {question}"\n'
    )
    menu = tools_json([normalise_tool(t) for t in TOOLS])
    ref = SolverFormat("reference", str(path)).messages("Weather {tools}?", TOOLS)
    assert ref == [
        {"role": "system", "content": "Answer in tags."},
        {"role": "user", "content": f"Tools:\n{menu}\nRequest: Weather {{tools}}?"},
    ]
    native = SolverFormat("native", str(path)).messages("Weather?", TOOLS)
    assert native[1:] == [
        {"role": "system", "content": "Use the tools when they fit."},
        {"role": "user", "content": "Request: Weather?"},
    ]
    # a key the file leaves out (native_reason_first) comes from the reference variant
    first = SolverFormat("native", str(path), reason_first=True).messages("Weather?", TOOLS)
    assert first[1] == {"role": "system", "content": solver_native_system("reference")}
    assert (
        "native" in SolverFormat("native", str(path)).describe()
        and str(path) in SolverFormat("native", str(path)).describe()
    )


def test_a_solver_section_with_one_key_takes_the_rest_from_reference(tmp_path):
    path = tmp_path / "only_native.yaml"
    path.write_text("solver:\n  native_system: Be brief.\n")
    ref = SolverFormat("reference", str(path)).messages("q", TOOLS)
    assert ref == SolverFormat("reference").messages("q", TOOLS)
    assert SolverFormat("native", str(path)).messages("q", TOOLS)[1] == {
        "role": "system",
        "content": "Be brief.",
    }


@pytest.mark.parametrize(
    ("body", "field", "why"),
    [
        ('  user: "Request: {question}"\n', "solver.user", "must use placeholder(s) ['tools']"),
        ('  user: "{question} {tools} {calls}"\n', "solver.user", "unknown placeholder {calls}"),
        ('  native_user: "{question} {tools}"\n', "solver.native_user", "unknown placeholder {tools}"),
        ('  native_user: "Hello."\n', "solver.native_user", "must use placeholder(s) ['question']"),
        ('  system: "Solve {question}"\n', "solver.system", "unknown placeholder {question}"),
        ('  native_system: "{tools}"\n', "solver.native_system", "unknown placeholder {tools}"),
        ("  user_message: x\n", "solver.user_message", "unknown key"),
    ],
)
def test_bad_solver_section_one_line_error(tmp_path, body, field, why):
    path = tmp_path / "bad.yaml"
    path.write_text("solver:\n" + body)
    with pytest.raises(ConfigError) as exc:
        load_prompt_variant(path)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{path}: {field}: {why}")


def test_json_braces_in_the_solver_text_are_literal(tmp_path):
    path = tmp_path / "json.yaml"
    path.write_text('solver:\n  system: \'Answer [{"name": "<tool_name>", "arguments": {...}}]\'\n')
    assert (
        SolverFormat("reference", str(path)).messages("q", TOOLS)[0]["content"].startswith('Answer [{"name"')
    )


def test_judge_retry_suffix_in_a_variant_is_refused_with_its_one_home(tmp_path):
    """The variant's judge.retry_suffix was never read (the judge retries with rewards.judge_retry_suffix)."""
    path = tmp_path / "old.yaml"
    path.write_text("judge:\n  system: s\n  user: '{question}'\n  retry_suffix: Just a digit.\n")
    with pytest.raises(
        ConfigError, match=r"judge\.retry_suffix: was removed; use rewards\.judge_retry_suffix"
    ):
        load_prompt_variant(path)
    assert "retry_suffix" not in load_prompt_variant("reference").section("judge")
