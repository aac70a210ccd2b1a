"""`toolr0 solve` and `toolr0 model info` on the tiny model; the packaged-model Solver check (slow)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from toolr0.cli import app  # noqa: E402

TOOLS = [
    {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "description": "celsius or fahrenheit"},
            },
            "required": ["city"],
        },
    }
]


@pytest.fixture
def tools_file(tmp_path):
    p = tmp_path / "tools.json"
    p.write_text(json.dumps(TOOLS))
    return p


def test_solve_on_tiny_model_prints_raw_and_reports_no_call(tiny_model_dir, tools_file, torch_one_thread):
    q = "What's the weather in Paris in celsius?"
    args = ["solve", "--model", str(tiny_model_dir), "-q", q, "--tools", str(tools_file)]
    opts = ["--raw", "--max-new-tokens", "8", "--dtype", "fp32"]
    res = CliRunner().invoke(app, [*args, *opts, "--solver-format", "reference"])
    assert res.exit_code == 1  # a random model writes no tool call
    assert "--- raw completion ---" in res.output and "no tool call parsed (missing_answer)" in res.output
    # native: a reply without a call is the answer "no call", printed as []
    res = CliRunner().invoke(app, [*args, *opts, "--solver-format", "native"])
    assert res.exit_code == 0 and "the model made no tool call" in res.output and "[]" in res.output


def test_solve_rejects_a_bad_tool_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    from toolr0.errors import ToolR0Error

    res = CliRunner().invoke(app, ["solve", "-q", "x", "--tools", str(bad)])
    assert isinstance(res.exception, ToolR0Error) and "not valid JSON" in str(res.exception)


class RecordingSampler:
    """Stands in for the model: records the conversations it is given, answers with no call."""

    def __init__(self):
        self.prompts = []

    def generate(self, prompts, params):
        self.prompts.extend(prompts)
        return [["<think>\nnothing fits\n</think>\n<tool_call_answer>[]</tool_call_answer>"] for _ in prompts]


def test_solve_prompt_variant_reaches_the_prompt(tmp_path, tools_file, monkeypatch):
    import toolr0.inference as inference
    from toolr0.core.prompts import solver_native_system
    from toolr0.errors import ConfigError

    sampler = RecordingSampler()
    monkeypatch.setattr(inference, "build_sampler", lambda *a, **k: sampler)
    variant = tmp_path / "mine.yaml"
    variant.write_text(
        "name: mine\nsolver:\n  system: My own system text.\n  native_reason_first: Think first, briefly.\n"
    )
    base = ["solve", "-q", "Weather in Paris?", "--tools", str(tools_file)]
    res = CliRunner().invoke(app, [*base, "--solver-format", "reference", "--prompt-variant", str(variant)])
    assert res.exit_code == 0, res.output
    assert sampler.prompts[-1][0] == {"role": "system", "content": "My own system text."}
    native = [*base, "--solver-format", "native"]
    res = CliRunner().invoke(app, [*native, "--reason-first", "--prompt-variant", str(variant)])
    assert res.exit_code == 0, res.output
    assert {"role": "system", "content": "Think first, briefly."} in sampler.prompts[-1]
    res = CliRunner().invoke(app, [*native, "--reason-first"])  # default: the reference variant
    assert {"role": "system", "content": solver_native_system("reference")} in sampler.prompts[-1]

    n = len(sampler.prompts)
    res = CliRunner().invoke(app, [*base, "--prompt-variant", str(tmp_path / "missing.yaml")])
    assert isinstance(res.exception, ConfigError) and "\n" not in str(res.exception)
    assert len(sampler.prompts) == n  # refused before sampling


def test_model_info_reads_headers_only(tiny_model_dir):
    res = CliRunner().invoke(app, ["model", "info", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    assert "Qwen2ForCausalLM" in res.output and "chat template: yes" in res.output
    assert "parameters:   0.1 M" in res.output


@pytest.mark.slow
def test_default_model_solves_the_weather_question(tools_file):
    """The packaged default model answers the weather question with the exact call (greedy)."""
    res = CliRunner().invoke(
        app,
        [
            "solve",
            "--model",
            "default",
            "-q",
            "What's the weather in Paris in celsius?",
            "--tools",
            str(tools_file),
            "--solver-format",
            "native",
        ],
    )
    assert res.exit_code == 0, res.output
    calls = json.loads(res.stdout[res.stdout.index("[\n") :])  # progress bars go to stderr
    assert calls == [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}]
