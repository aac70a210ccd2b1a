"""Prompt builders and prompt variants as data (spec §4, §5.4, §6.5, §7.1; issue 8 item 3)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from toolr0.core import prompts
from toolr0.core.parsing import extract_last_tag, parse_strict_json
from toolr0.core.prompts import (
    PromptConfig,
    difficulty_label_messages,
    generator_messages,
    judge_messages,
    load_prompt_variant,
    render_conversation,
    solver_messages,
)
from toolr0.core.schema import ToolCall, normalise_tool, tools_json
from toolr0.core.spec import SpecSampler, TaskSpec
from toolr0.errors import ConfigError

BENCH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "hammer"
SOLVER_FORMAT_LINE = (
    '<think>\nThis is my reasoning.\n</think>\n<tool_call_answer>[{"name": "<tool_name>", "arguments": '
    '{"arg1": "value", "arg2": "value2", ...}}, ...]</tool_call_answer>'
)


@pytest.mark.parametrize("variant", ["reference", "compact"])
def test_generator_prompt_fills_every_spec_value(variant):
    spec = TaskSpec("vehicle_control", "multi_turn", 7, 2)
    msgs = generator_messages(spec, variant)
    assert [m["role"] for m in msgs] == ["system", "user"]
    text = msgs[0]["content"] + "\n" + msgs[1]["content"]
    assert "vehicle_control" in text
    assert "exactly 7 tools" in text
    assert re.search(r"exactly 2 (gold tool )?call", text)
    for tag in ("think", "question", "available_tools", "tool_call_answer"):
        assert f"<{tag}>" in text and f"</{tag}>" in text
    assert '\\"' not in text  # plain quotes only: escaped quotes get copied by small models
    assert not re.search(r"\{(domain|context_type|menu_size|num_calls|context_note)\}", text)


def test_reference_prompt_follows_spec_section_4():
    spec = TaskSpec("finance", "single_turn", 3, 1)
    system, user = (m["content"] for m in generator_messages(spec, "reference"))
    assert "CONTROL SPEC (MUST FOLLOW EXACTLY)" in system
    assert "Context type: single_turn" in system
    assert "# Conversation\nUser: ...\nAgent: ...\nUser: ...\nAgent: ..." in system
    assert all(f"\n{i}. " in system for i in range(1, 7))  # six rules
    assert "flat primitive" in system and "must appear in the question" in system
    assert '"required": [' in system  # optional top-level required
    assert user.lower().startswith("generate a new tool-calling task now")
    assert len(system) > len(generator_messages(spec, "compact")[0]["content"])


def test_compact_prompt_toy_is_a_valid_task_and_names_no_benchmark_tool():
    from toolr0.core.verify import verify_task

    system = generator_messages(TaskSpec("finance", "single_turn", 3, 1), "compact")[0]["content"]
    illustration = system[system.index("<think>The user") :]
    tools = parse_strict_json(extract_last_tag(illustration, "available_tools")).value
    calls = parse_strict_json(extract_last_tag(illustration, "tool_call_answer")).value
    assert len(tools) == 2 and len(calls) == 1
    # The illustration is structurally valid but, as a copy of the prompt, is rejected as an echo.
    assert verify_task(illustration).reason == "prompt_echo"
    toy_names = {t["name"].lower().replace("_", "") for t in tools}
    if BENCH.is_dir():
        bench_names = set()
        for f in BENCH.glob("*.json"):
            for sample in json.loads(f.read_text()):
                bench_names |= {t["name"].lower().replace("_", "") for t in sample["tools"]}
        assert len(bench_names) > 100
        assert not toy_names & bench_names


def test_compact_context_notes_differ_by_context_type():
    single = generator_messages(TaskSpec("news", "single_turn", 2, 1), "compact")[0]["content"]
    multi = generator_messages(TaskSpec("news", "multi_turn", 2, 1), "compact")[0]["content"]
    assert "# Conversation" in multi and "# Conversation" not in single


def test_solver_messages_exact_format_and_user_message():
    tools = [{"name": "get_rate", "description": "Exchange rate", "parameters": {"base": {"type": "str"}}}]
    msgs = solver_messages("How much is 5 EUR in USD?", tools)
    assert SOLVER_FORMAT_LINE in msgs[0]["content"]
    normalised = [normalise_tool(t) for t in tools]
    assert msgs[1]["content"] == (
        f"User request:\nHow much is 5 EUR in USD?\n\nAvailable tools (JSON):\n{tools_json(normalised)}\n"
    )
    assert solver_messages("q", normalised)[1]["content"] == solver_messages("q", tools)[1]["content"]


@pytest.mark.skipif(not BENCH.is_dir(), reason="shared benchmarks not present")
def test_solver_messages_work_for_every_benchmark_menu_form():
    for name in ("toolalpaca.json", "sealtool.json", "apibank_l1.json"):
        sample = json.loads((BENCH / name).read_text())[0]
        q = render_conversation(sample["query"])
        user = solver_messages(q, sample["tools"])[1]["content"]
        rendered = json.loads(user.split("Available tools (JSON):\n", 1)[1])
        assert [t["name"] for t in rendered] == [t["name"] for t in sample["tools"]]
        assert all(t["parameters"]["type"] == "object" for t in rendered)
    # Seal-Tools keeps `required` as a top-level list and per-parameter flags: both end up in `required`.
    seal = json.loads((BENCH / "sealtool.json").read_text())[0]["tools"]
    rendered = json.loads(solver_messages("q", seal)[1]["content"].split("(JSON):\n", 1)[1])
    flagged = {
        p for p, v in seal[0]["parameters"].items() if isinstance(v, dict) and v.get("required") is True
    }
    assert flagged | set(seal[0].get("required", [])) <= set(rendered[0]["parameters"]["required"])


def test_judge_and_difficulty_messages():
    tools = [{"name": "get_rate", "description": "Exchange rate", "parameters": {"base": {"type": "string"}}}]
    calls = [ToolCall("get_rate", {"base": "EUR"})]
    msgs = judge_messages("What is the EUR rate {tools}?", tools, calls)
    system, user = msgs[0]["content"], msgs[1]["content"]
    assert "5 = perfect" in system and "1 = " in system and "must score 1 or 2" in system
    assert user.endswith("Score (1-5):")
    assert (
        "<question>\nWhat is the EUR rate {tools}?\n</question>" in user
    )  # inserted text is not re-substituted
    assert '[{"name": "get_rate", "arguments": {"base": "EUR"}}]' in user
    lab = difficulty_label_messages("q", tools, [{"name": "get_rate", "arguments": {}}])
    assert "easy" in lab[0]["content"] and lab[1]["content"].rstrip().endswith("(easy, medium or hard):")


def test_render_conversation_apibank_turns():
    turns = [
        {"role": "user", "content": "Can you tell me what happened on October 6th?"},
        {"role": "agent", "content": "Sure, let me search."},
        {"role": "assistant", "content": '```json\n{"name": "X"}\n```'},
        {"role": "tool", "content": {"result": 1}},
    ]
    text = render_conversation(turns)
    assert text.startswith("# Conversation\nUser: Can you tell me what happened on October 6th?\nAgent: Sure")
    assert "\nTool: " in text and text.count("Agent:") == 2
    assert render_conversation("plain question") == "plain question"
    assert render_conversation(None) == "# Conversation"


def test_prompt_config_defaults_and_validation():
    cfg = PromptConfig()
    assert cfg.generator_variant == "reference" and cfg.solver_variant == "reference"
    with pytest.raises(ValueError):
        PromptConfig(generator_variant="reference", colour="x")  # type: ignore[call-arg]


def test_user_variant_file_and_fallback_sections(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ngenerator:\n  system: 'Write a {domain} task: {menu_size} tools, {num_calls} calls. "
        'Example {"name": "x"}\'\n  user: Go.\n'
    )
    spec = SpecSampler(seed=1).sample_one(0)
    msgs = generator_messages(spec, str(path))
    assert msgs[0]["content"].startswith(f"Write a {spec.domain} task: {spec.menu_size} tools")
    assert '{"name": "x"}' in msgs[0]["content"]
    v = load_prompt_variant(path)
    assert v.section("solver") == load_prompt_variant("reference").section("solver")  # falls back


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("generator: [1, 2]\n", "generator"),
        ("generator:\n  system: '{domain} {menu_size} {num_calls}'\n", "generator.user"),
        ("generator:\n  system: '{domain} {num_calls}'\n  user: u\n", "generator.system"),
        (
            "generator:\n  system: '{domain} {menu_size} {num_calls} {domian}'\n  user: u\n",
            "generator.system",
        ),
        ("generator:\n  system: 3\n  user: u\n", "generator.system"),
        ("colour: blue\ngenerator:\n  system: s\n  user: u\n", "colour"),
        ("generator:\n  sytem: s\n", "generator.sytem"),
        ("generator: {system: [\n", "line"),
        (
            "generator:\n  system: '{domain} {menu_size} {num_calls}'\n  user: u\n  no_call_system: n\n",
            "generator.no_call_user",
        ),
        (
            "generator:\n  system: '{domain} {menu_size} {num_calls}'\n  user: u\n"
            "  no_call_system: '{domain}'\n  no_call_user: u\n",
            "generator.no_call_system",
        ),
    ],
)
def test_bad_variant_file_one_line_error(tmp_path, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_prompt_variant(path)
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith(f"{path}: {field}")


def test_unknown_variant_name():
    with pytest.raises(ConfigError, match="not found"):
        load_prompt_variant("nonexistent-variant")


def test_builtin_variants_listed():
    assert set(prompts.BUILTIN_VARIANTS) == {
        "reference",
        "compact",
        "compact_noexample",
        "compact_named",
        "answer_first",
    }


def test_noexample_variant_is_compact_without_the_illustration():
    spec = TaskSpec("finance", "single_turn", 3, 1)
    compact = generator_messages(spec, "compact")[0]["content"]
    bare = generator_messages(spec, "compact_noexample")[0]["content"]
    assert "paint_fence" in compact and "paint_fence" not in bare
    assert "exactly 3 tools" in bare and "finance" in bare


@pytest.mark.parametrize("variant", prompts.BUILTIN_VARIANTS)
def test_no_call_prompt_asks_for_an_unserved_request_and_empty_gold(variant):
    """num_calls 0: every built-in variant asks for a request none of the menu's tools serves, gold []."""
    spec = TaskSpec("travel", "multi_turn", 3, 0)
    msgs = generator_messages(spec, variant)
    text = msgs[0]["content"] + "\n" + msgs[1]["content"]
    assert "travel" in text and "exactly 3 tools" in text and "# Conversation" in text
    assert "<tool_call_answer>[]</tool_call_answer>" in text
    assert "no tool" in text and "none of" in text
    assert not re.search(r"exactly 0|0 call\(s\)", text)
    assert not re.search(r"\{(domain|context_type|menu_size|num_calls|context_note)\}", text)
    assert '\\"' not in text
    call = generator_messages(TaskSpec("travel", "multi_turn", 3, 1), variant)
    assert call[0]["content"] != msgs[0]["content"] and "<tool_call_answer>[]" not in call[0]["content"]


def test_no_call_prompt_falls_back_to_reference_pair(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ngenerator:\n  system: '{domain} {menu_size} {num_calls}'\n  user: Go.\n")
    spec = TaskSpec("news", "single_turn", 2, 0)
    assert generator_messages(spec, str(path)) == generator_messages(spec, "reference")
    assert generator_messages(TaskSpec("news", "single_turn", 2, 1), str(path))[1]["content"] == "Go."


def test_compact_no_call_illustration_is_a_no_call_task_rejected_as_echo():
    from toolr0.core.verify import verify_task

    spec = TaskSpec("finance", "single_turn", 2, 0)
    system = generator_messages(spec, "compact")[0]["content"]
    illustration = system[system.index("<think>The user") :]
    assert parse_strict_json(extract_last_tag(illustration, "tool_call_answer")).value == []
    assert len(parse_strict_json(extract_last_tag(illustration, "available_tools")).value) == 2
    assert verify_task(illustration, spec).reason == "prompt_echo"
