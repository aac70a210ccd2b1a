"""The eval fingerprint hashes what the model reads: the prompt text, how a menu is rendered and (model
predictions) the chat template; a folder written under another hash is refused on resume."""

from __future__ import annotations

import json

import pytest

import toolr0.core.prompts as prompts_mod
import toolr0.core.solver_format as solver_format_mod
from toolr0.core.native import openai_tools
from toolr0.core.schema import tools_json
from toolr0.core.solver_format import SolverFormat
from toolr0.errors import ToolR0Error
from toolr0.eval import registry
from toolr0.eval.fingerprint import SAMPLE_MENU, prompt_sha256
from toolr0.eval.runner import EvalSettings, run_eval

REF, NATIVE = SolverFormat("reference"), SolverFormat("native")


def test_the_sample_menu_has_two_tools_with_required_and_optional_parameters():
    assert len(SAMPLE_MENU) == 2
    for tool in SAMPLE_MENU:
        assert tool.required and set(tool.properties) - set(tool.required)


def test_editing_the_variant_text_changes_the_hash(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("name: a\nsolver:\n  system: Think in <think></think>, answer in <tool_call_answer>.\n")
    b.write_text("name: b\nsolver:\n  system: Think in <think></think>, then answer in <tool_call_answer>.\n")
    ha, hb = (
        prompt_sha256(SolverFormat("reference", str(a))),
        prompt_sha256(SolverFormat("reference", str(b))),
    )
    assert ha != hb and ha == prompt_sha256(SolverFormat("reference", str(a)))
    # `compact` takes its solver section from `reference`: same text, same hash (the name is its own key)
    assert prompt_sha256(REF) == prompt_sha256(SolverFormat("reference", "compact"))


def test_changing_the_menu_rendering_changes_the_hash(monkeypatch):
    ref, native = prompt_sha256(REF), prompt_sha256(NATIVE)
    monkeypatch.setattr(prompts_mod, "tools_json", lambda tools: tools_json(tools).replace('"', "'"))
    assert prompt_sha256(REF) != ref and prompt_sha256(NATIVE) == native
    monkeypatch.undo()
    monkeypatch.setattr(solver_format_mod, "openai_tools", lambda tools: openai_tools(tools)[::-1])
    assert prompt_sha256(NATIVE) != native and prompt_sha256(REF) == ref


@pytest.mark.parametrize("fmt", [REF, NATIVE], ids=["reference", "native"])
def test_swapping_the_chat_template_changes_the_hash(fmt):
    pytest.importorskip("transformers")
    from toolr0.inference.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    with_template = prompt_sha256(fmt, tok)
    assert with_template != prompt_sha256(fmt) and with_template == prompt_sha256(fmt, tok)
    tok.chat_template = tok.chat_template.replace("<|im_start|>", "<|im_start|> ")
    assert prompt_sha256(fmt, tok) != with_template


@pytest.fixture
def toy_hammer(tmp_path, monkeypatch):
    """A registered two-item Hammer-format benchmark `fp_toy` under ``tmp_path/data``."""
    from toolr0.eval.hammer_family import HammerBenchmark

    menu = [{"name": "ping", "description": "Ping a host", "parameters": {"host": {"type": "string"}}}]
    rows = [
        {"query": f"Ping {h}.", "tools": menu, "answers": [{"name": "ping", "arguments": {"host": h}}]}
        for h in "ab"
    ]
    (tmp_path / "data" / "hammer").mkdir(parents=True)
    (tmp_path / "data" / "hammer" / "fp_toy.json").write_text(json.dumps(rows))
    monkeypatch.setitem(registry.REGISTRY, "fp_toy", HammerBenchmark("fp_toy", "FP toy", file="fp_toy.json"))
    return str(tmp_path / "data")


class TemplateSampler:
    """A fake model sampler with a tokenizer (its chat template is hashed); answers every prompt in prose."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.prompts_seen = 0

    def generate(self, prompts, params, adapter=None):
        self.prompts_seen += len(prompts)
        return [["I am not sure."] for _ in prompts]


def test_a_folder_of_another_chat_template_or_prompt_hash_is_refused(tmp_path, toy_hammer):
    pytest.importorskip("transformers")
    from toolr0.inference.tiny import tiny_tokenizer

    s = EvalSettings(model="fake", benchmarks=["fp_toy"], out_dir=str(tmp_path / "o"), data_dir=toy_hammer)
    tok = tiny_tokenizer()
    run_eval(s, sampler=TemplateSampler(tok), progress=False)
    cfg_path = tmp_path / "o" / "eval_config.json"
    recorded = json.loads(cfg_path.read_text())["fingerprint"]["prompt_sha256"]
    assert recorded == prompt_sha256(SolverFormat("reference"), tok)
    again = TemplateSampler(tok)
    run_eval(s, sampler=again, progress=False)
    assert again.prompts_seen == 0  # same template: resumed, nothing redone

    other = tiny_tokenizer()
    other.chat_template = other.chat_template.replace("<|im_start|>", "<|im_start|> ")
    with pytest.raises(ToolR0Error, match="different setting \\(prompt_sha256: ") as exc:
        run_eval(s, sampler=TemplateSampler(other), progress=False)
    assert "\n" not in str(exc.value)

    # a folder hashed the old way (or by another prompt) is refused with the same one-line message
    cfg = json.loads(cfg_path.read_text())
    cfg["fingerprint"]["prompt_sha256"] = "0123456789abcdef"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ToolR0Error, match="prompt_sha256: '0123456789abcdef' -> "):
        run_eval(s, sampler=TemplateSampler(tok), progress=False)


def test_oracle_predictions_hash_the_messages_only(tmp_path, toy_hammer):
    s = EvalSettings(
        benchmarks=["fp_toy"],
        predictions="gold",
        out_dir=str(tmp_path / "g"),
        data_dir=toy_hammer,
        solver_format="native",
    )
    summary = run_eval(s, progress=False)
    assert summary["benchmarks"]["fp_toy"]["accuracy"] == 100.0
    fp = json.loads((tmp_path / "g" / "eval_config.json").read_text())["fingerprint"]
    assert fp["prompt_sha256"] == prompt_sha256(NATIVE)


def test_an_int8_request_is_in_the_fingerprint_before_the_model_loads():
    """`eval run --cpu-matmul int8` changes answers: its folder must refuse fp32 rows (and the reverse) even
    though the sampler, built after the fingerprint, is not there yet."""
    from toolr0.eval.runner import requested_int8

    assert requested_int8(EvalSettings(cpu_matmul="int8")) == "int8"
    assert requested_int8(EvalSettings(cpu_matmul="auto")) is None  # fp32 kernels: recorded as before
