"""The benchmark registry: groups, lookups, and a new family added as one class that the runner uses as is."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from toolr0.core.schema import Tool, ToolCall
from toolr0.errors import ToolR0Error
from toolr0.eval import registry
from toolr0.eval.benchmarks import EvalItem
from toolr0.eval.runner import EvalSettings, run_eval
from toolr0.eval.scoring import score_completion


def test_groups_and_lookup():
    g = registry.groups()
    assert g["hammer"] == ["toolalpaca", "sealtool", "apibank_l1", "apibank_l2"]
    assert "bfcl_simple_python" in g["bfcl"] and "bfcl_live_simple" in g["bfcl_live"]
    assert g["all"] == list(registry.REGISTRY)
    assert registry.get("simple_python").name == "bfcl_simple_python"  # bare BFCL category
    assert registry.display_name("sealtool") == "Seal-Tools" and registry.family_of("bfcl_parallel") == "bfcl"
    with pytest.raises(ToolR0Error, match="unknown benchmark 'nope'"):
        registry.get("nope")


@dataclass(frozen=True)
class ToyBenchmark(registry.Benchmark):
    """Two in-code items: a whole family in a dozen lines."""

    family: str = "toy"
    groups: tuple[str, ...] = ("toy",)

    def load(self, data_dir=None):
        menu = [Tool("get_weather", "", {"city": {"type": "string"}}, ["city"])]
        return [
            EvalItem("toy/0", self.name, 0, "Weather in Lisbon?", menu, [ToolCall("get_weather", {"city": "Lisbon"})]),
            EvalItem("toy/1", self.name, 1, "Tell me a joke.", menu, []),
        ]

    def score(self, item, text, solver_format="reference"):
        return score_completion(text, item.gold, solver_format)


@pytest.mark.parametrize("fmt", ["reference", "native"])
def test_a_new_family_runs_through_the_runner(tmp_path, monkeypatch, fmt):
    monkeypatch.setitem(registry.REGISTRY, "toy", ToyBenchmark("toy", "Toy"))
    settings = EvalSettings(benchmarks=["toy"], predictions="gold", out_dir=str(tmp_path / fmt), solver_format=fmt)
    summary = run_eval(settings, progress=False)
    assert summary["benchmarks"]["toy"]["accuracy"] == 100.0 and summary["benchmarks"]["toy"]["n"] == 2
