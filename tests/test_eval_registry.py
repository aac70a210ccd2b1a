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
            EvalItem(
                "toy/0",
                self.name,
                0,
                "Weather in Lisbon?",
                menu,
                [ToolCall("get_weather", {"city": "Lisbon"})],
            ),
            EvalItem("toy/1", self.name, 1, "Tell me a joke.", menu, []),
        ]

    def score(self, item, text, solver_format="reference"):
        return score_completion(text, item.gold, solver_format)


@pytest.mark.parametrize("fmt", ["reference", "native"])
def test_a_new_family_runs_through_the_runner(tmp_path, monkeypatch, fmt):
    monkeypatch.setitem(registry.REGISTRY, "toy", ToyBenchmark("toy", "Toy"))
    settings = EvalSettings(
        benchmarks=["toy"], predictions="gold", out_dir=str(tmp_path / fmt), solver_format=fmt
    )
    summary = run_eval(settings, progress=False)
    assert summary["benchmarks"]["toy"]["accuracy"] == 100.0 and summary["benchmarks"]["toy"]["n"] == 2


TOY_MODULE = '''
"""A whole new benchmark family plus one more Hammer-format file: one module, one register line each."""
from dataclasses import dataclass

from toolr0.core.schema import Tool, ToolCall
from toolr0.eval import registry
from toolr0.eval.benchmarks import EvalItem
from toolr0.eval.scoring import score_completion


@dataclass(frozen=True)
class ToyFamily(registry.Benchmark):
    family: str = "toyfam"
    groups: tuple = ("toyfam",)

    def load(self, data_dir=None):
        menu = [Tool("get_weather", "Weather now", {"city": {"type": "string"}}, ["city"])]
        gold = [ToolCall("get_weather", {"city": "Lisbon"})]
        return [EvalItem(f"{self.name}/{i}", self.name, i, "Weather in Lisbon?", menu, gold) for i in range(3)]

    def score(self, item, text, solver_format="reference"):
        return score_completion(text, item.gold, solver_format)


registry.register(ToyFamily("toyfam_one", "Toy family", size=3))
registry.register(registry.HammerBenchmark("toyhammer", "Toy Hammer", file="toy_hammer.json", size=2))
'''


def test_a_benchmark_module_outside_the_package_runs_through_the_cli(tmp_path, monkeypatch):
    """`eval list` / `eval run --predictions gold|corrupt` / `eval report` on benchmarks that one temp module
    registers: nothing else in the package names them."""
    import json
    import sys

    from typer.testing import CliRunner

    from toolr0.cli import app

    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))  # registrations vanish after the test
    (tmp_path / "toy_bench_module.py").write_text(TOY_MODULE)
    (tmp_path / "data" / "hammer").mkdir(parents=True)
    rows = [
        {
            "query": f"Convert {n} US dollars to euros, please.",
            "tools": [
                {
                    "name": "convert",
                    "description": "Convert money",
                    "parameters": {
                        "amount": {"type": "integer", "description": "how much", "required": True}
                    },
                }
            ],
            "answers": [{"name": "convert", "arguments": {"amount": n}}],
        }
        for n in (5, 7)
    ]
    (tmp_path / "data" / "hammer" / "toy_hammer.json").write_text(json.dumps(rows))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toy_bench_module", raising=False)
    __import__("toy_bench_module")

    cli = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    listed = cli.invoke(app, ["eval", "list", *data])
    assert listed.exit_code == 0, listed.output
    toy_line = next(line for line in listed.output.splitlines() if line.startswith("toyfam_one"))
    assert "3" in toy_line.split() and "Toy family" in toy_line
    assert any(line.startswith("toyhammer") and " 2 " in line for line in listed.output.splitlines())

    for mode, expected in (("gold", 100.0), ("corrupt", 0.0)):
        out = tmp_path / mode
        r = cli.invoke(
            app,
            [
                "eval",
                "run",
                "-b",
                "toyfam,toyhammer",
                "--predictions",
                mode,
                "-o",
                str(out),
                "--no-progress",
                *data,
            ],
        )
        assert r.exit_code == 0, r.output
        summary = json.loads((out / "summary.json").read_text())
        assert summary["benchmarks"]["toyfam_one"]["accuracy"] == expected
        assert summary["benchmarks"]["toyhammer"]["accuracy"] == expected
        assert summary["benchmarks"]["toyhammer"]["n"] == 2 and summary["benchmarks"]["toyfam_one"]["n"] == 3
        assert "| Toy family | 3 |" in r.output and "| Toy Hammer | 2 |" in r.output
    report = cli.invoke(app, ["eval", "report", str(tmp_path / "gold"), "--rebuild"])
    assert report.exit_code == 0 and "| Toy family | 3 | 100.00 |" in report.output
