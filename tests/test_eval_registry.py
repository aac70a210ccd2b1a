"""The benchmark registry: groups, lookups, families loaded lazily from their own modules, and a new family
added as one class (or one module outside the package) that the runner and the CLI use as is."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from toolr0.core.schema import Tool, ToolCall
from toolr0.errors import ToolR0Error
from toolr0.eval import registry
from toolr0.eval.items import EvalItem
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
from toolr0.eval.items import EvalItem
from toolr0.eval.hammer_family import HammerBenchmark
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
registry.register(HammerBenchmark("toyhammer", "Toy Hammer", file="toy_hammer.json", size=2))
'''


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry with its packaged families loaded; registrations and loaded modules vanish after the test."""
    registry.load_families()
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    monkeypatch.setattr(registry, "_LOADED", set(registry._LOADED))
    monkeypatch.delenv(registry.ENV_VAR, raising=False)


def test_the_registry_imports_no_family_and_loads_them_on_the_first_lookup():
    import subprocess
    import sys

    code = (
        "import sys\nfrom toolr0.eval import registry\n"
        "print(sorted(m for m in registry.FAMILY_MODULES if m in sys.modules))\n"
        "registry.get('sealtool')\n"
        "print(sorted(m for m in registry.FAMILY_MODULES if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", str(sorted(registry.FAMILY_MODULES))]


def test_a_module_that_fails_to_import_is_one_line_naming_it(tmp_path, monkeypatch, fresh_registry):
    (tmp_path / "broken_bench_module.py").write_text("import no_such_package_zq\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ToolR0Error, match="benchmark module 'broken_bench_module' failed to import") as exc:
        registry.load_families(["broken_bench_module"])
    assert "\n" not in str(exc.value)
    monkeypatch.setenv(registry.ENV_VAR, "nope_not_a_module_zq")
    with pytest.raises(ToolR0Error, match="'nope_not_a_module_zq' failed to import"):
        registry.get("sealtool")
    monkeypatch.delenv(registry.ENV_VAR)
    from typer.testing import CliRunner

    from toolr0.cli import app

    r = CliRunner().invoke(app, ["eval", "list", "--benchmark-module", "broken_bench_module"])
    assert r.exit_code != 0 and "broken_bench_module" in str(r.exception or r.output)


def test_a_benchmark_module_outside_the_package_runs_through_the_cli(tmp_path, monkeypatch, fresh_registry):
    """`eval list` / `eval run --predictions gold|corrupt` / `eval report` on benchmarks that one temp module
    registers, named by `--benchmark-module` or `$TOOLR0_BENCHMARK_MODULES`: nothing else names them."""
    import json
    import sys

    from typer.testing import CliRunner

    from toolr0.cli import app

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

    cli = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    plain = cli.invoke(app, ["eval", "list", *data])
    assert plain.exit_code == 0 and "toyfam_one" not in plain.output  # not named: not loaded
    module = ["--benchmark-module", "toy_bench_module"]
    listed = cli.invoke(app, ["eval", "list", *data, *module])
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
                *module,
            ],
        )
        assert r.exit_code == 0, r.output
        summary = json.loads((out / "summary.json").read_text())
        assert summary["benchmarks"]["toyfam_one"]["accuracy"] == expected
        assert summary["benchmarks"]["toyhammer"]["accuracy"] == expected
        assert summary["benchmarks"]["toyhammer"]["n"] == 2 and summary["benchmarks"]["toyfam_one"]["n"] == 3
        assert "| Toy family | 3 |" in r.output and "| Toy Hammer | 2 |" in r.output

    # the environment variable does the same, in a fresh registry (the module imported anew)
    monkeypatch.setattr(registry, "REGISTRY", {})
    monkeypatch.setattr(registry, "_LOADED", set())
    monkeypatch.delitem(sys.modules, "toy_bench_module", raising=False)
    monkeypatch.setenv(registry.ENV_VAR, "toy_bench_module")
    report = cli.invoke(app, ["eval", "report", str(tmp_path / "gold"), "--rebuild"])
    assert report.exit_code == 0 and "| Toy family | 3 | 100.00 |" in report.output
