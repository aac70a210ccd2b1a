"""Task-spec distribution, sampler and the `toolr0 spec` CLI (spec §3)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from importlib import resources

import pytest
import yaml
from typer.testing import CliRunner

from toolr0.core.spec import SpecSampler, TaskSpec, load_spec_file, parse_spec_data
from toolr0.errors import ConfigError

PAPER_DOMAINS = (
    "finance healthcare productivity retail_ecommerce scheduling database cloud_infrastructure system programming "
    "geolocation logistics communication iot cybersecurity insurance legal news weather sports entertainment "
    "education real_estate food_ordering translation utilities government memory_management web_search "
    "social_media math vehicle_control travel"
).split()


@pytest.fixture(scope="module")
def base_data():
    return yaml.safe_load((resources.files("toolr0.core") / "data" / "default_spec.yaml").read_text())


@pytest.fixture(scope="module")
def big_sample():
    return SpecSampler(load_spec_file(), seed=123).sample(20_000)


def test_default_file_has_paper_values():
    dist = load_spec_file()
    weights = dist.domain_weights()
    assert [d for d in weights if weights[d] > 0] == PAPER_DOMAINS
    assert weights["customer_support"] == 0
    assert all(weights[d] == pytest.approx(1 / 32) for d in PAPER_DOMAINS)
    assert dist.context_type == {"single_turn": 0.9, "multi_turn": 0.1}
    # no-call tasks (num_calls 0) are listed with weight 0: the paper has none
    assert dist.num_calls["single_turn"] == {1: 0.8, 2: 0.2, 0: 0}
    assert dist.num_calls["multi_turn"] == {1: 1.0, 0: 0}


def test_sampler_frequencies_match_distribution(big_sample):
    n = len(big_sample)
    ctx = Counter(s.context_type for s in big_sample)
    assert ctx["multi_turn"] / n == pytest.approx(0.1, abs=0.01)
    single = [s for s in big_sample if s.context_type == "single_turn"]
    assert sum(s.num_calls == 2 for s in single) / len(single) == pytest.approx(0.2, abs=0.015)
    assert all(s.num_calls == 1 for s in big_sample if s.context_type == "multi_turn")
    assert not any(s.no_call for s in big_sample)
    two = Counter(s.menu_size for s in big_sample if s.num_calls == 2)
    total2 = sum(two.values())
    assert set(two) == {3, 4, 5}
    for m, p in {3: 0.3, 4: 0.4, 5: 0.3}.items():
        assert two[m] / total2 == pytest.approx(p, abs=0.03)
    one = Counter(s.menu_size for s in big_sample if s.num_calls == 1)
    total1 = sum(one.values())
    assert set(one) == set(range(2, 9))
    assert sum(one[m] for m in (2, 3, 4)) / total1 == pytest.approx(0.4, abs=0.015)
    for m in (2, 3, 4):  # uniform inside the small bucket: 0.4 / 3
        assert one[m] / total1 == pytest.approx(0.4 / 3, abs=0.015)
    for m in (5, 6, 7, 8):  # and inside the large one: 0.6 / 4
        assert one[m] / total1 == pytest.approx(0.6 / 4, abs=0.015)
    doms = Counter(s.domain for s in big_sample)
    assert "customer_support" not in doms
    assert set(doms) == set(PAPER_DOMAINS)
    assert max(doms.values()) / n < 1 / 32 + 0.008 and min(doms.values()) / n > 1 / 32 - 0.008


def test_sampler_is_deterministic_per_index():
    dist = load_spec_file()
    a = SpecSampler(dist, seed=7).sample(50)
    b = SpecSampler(dist, seed=7).sample(50)
    assert a == b
    assert SpecSampler(dist, seed=7).sample_one(31) == a[31]
    assert SpecSampler(dist, seed=7).sample(10, start=40) == a[40:50]
    assert SpecSampler(dist, seed=8).sample(50) != a


def test_taskspec_roundtrip_and_frozen():
    s = TaskSpec("finance", "single_turn", 3, 1)
    assert TaskSpec.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    with pytest.raises(AttributeError):
        s.domain = "x"  # type: ignore[misc]


def test_user_defined_distribution(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "domains: {gardening: 3, cooking: 1}\n"
        "context_type: {single_turn: 1}\n"
        "num_calls: {single_turn: {1: 1, 3: 1}}\n"
        "menu_size:\n  default:\n    buckets: [{weight: 1, min: 4, max: 6}]\n"
    )
    specs = SpecSampler(load_spec_file(path), seed=0).sample(4000)
    doms = Counter(s.domain for s in specs)
    assert doms["gardening"] / 4000 == pytest.approx(0.75, abs=0.03)
    assert {s.num_calls for s in specs} == {1, 3}
    assert {s.menu_size for s in specs} == {4, 5, 6}


def _bad(base, mutate):
    data = copy.deepcopy(base)
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["domains"].__setitem__("finance", -1), "domains"),
        (lambda d: d.__setitem__("domains", {k: 0 for k in d["domains"]}), "domains"),
        (lambda d: d.__setitem__("colour", "blue"), "colour"),
        (lambda d: d["context_type"].__setitem__("single_turn", "lots"), "context_type.single_turn"),
        (
            lambda d: d["menu_size"]["1"]["buckets"][0].__setitem__("weight", -2),
            "menu_size.1.buckets[0].weight",
        ),
        (lambda d: d["menu_size"]["1"]["buckets"][0].__setitem__("size", 3), "menu_size.1.buckets[0].size"),
        (lambda d: d["menu_size"]["1"]["buckets"][0].__setitem__("max", 1), "menu_size.1.buckets[0]"),
        (lambda d: d["num_calls"].__delitem__("multi_turn"), "num_calls"),
        (lambda d: d["num_calls"].__setitem__("single_turn", {1: 0, 2: 0}), "num_calls"),
        (lambda d: d["num_calls"].__setitem__("single_turn", {-1: 1}), "num_calls"),
        (lambda d: d["menu_size"].__delitem__("default"), "menu_size"),
        (lambda d: d["menu_size"].__setitem__("1", {"values": {2: 1}, "buckets": []}), "menu_size.1"),
        (lambda d: d.__delitem__("domains"), "domains"),
        (lambda d: d["domains"].__setitem__("finance", float("nan")), "domains"),
    ],
)
def test_bad_file_one_line_error_names_file_and_field(tmp_path, base_data, mutate, field):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_bad(base_data, mutate)))
    with pytest.raises(ConfigError) as exc:
        load_spec_file(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {field}")


def test_missing_file_and_yaml_syntax_error(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: spec file not found"):
        load_spec_file(tmp_path / "nope.yaml")
    bad = tmp_path / "syntax.yaml"
    bad.write_text("domains: {a: 1\ncontext_type: [")
    with pytest.raises(ConfigError, match=r"syntax\.yaml: line \d+, column \d+: YAML syntax error"):
        load_spec_file(bad)
    with pytest.raises(ConfigError, match="<top>"):
        parse_spec_data([1, 2], "x.yaml")


def test_cli_sample_and_show(tmp_path):
    from toolr0.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["spec", "sample", "--n", "5", "--seed", "0"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.strip().splitlines()]
    assert len(rows) == 5
    assert [TaskSpec.from_dict(r) for r in rows] == SpecSampler(load_spec_file(), seed=0).sample(5)
    res = runner.invoke(app, ["spec", "show"])
    assert res.exit_code == 0
    assert "num_calls[single_turn]" in res.output and "uniform[5, 8]" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("domains: {a: -1}\n")
    res = runner.invoke(app, ["spec", "sample", "--file", str(bad)])
    assert res.exit_code != 0
    assert "domains" in str(res.exception)


def test_integer_yaml_keys_accepted(tmp_path):
    path = tmp_path / "intkeys.yaml"
    path.write_text(
        "domains: {a: 1}\ncontext_type: {single_turn: 1}\nnum_calls: {single_turn: {1: 1}}\n"
        "menu_size:\n  1: {values: {3: 1}}\n"
    )
    assert SpecSampler(load_spec_file(path), seed=0).sample(3) == [TaskSpec("a", "single_turn", 3, 1)] * 3


def test_default_sampling_unchanged_by_the_zero_weight_no_call_entry(base_data):
    """Listing num_calls 0 with weight 0 keeps every sampled spec of the paper distribution as it was."""
    data = copy.deepcopy(base_data)
    for dist in data["num_calls"].values():
        dist.pop(0)
    del data["menu_size"]["0"]
    paper = parse_spec_data(data, "paper.yaml")
    assert SpecSampler(paper, seed=5).sample(500) == SpecSampler(load_spec_file(), seed=5).sample(500)


def test_packaged_no_call_distribution():
    """`no_call` (small presets): the paper's distribution plus 12 % no-call specs with menus of 1-4 tools."""
    base, dist = load_spec_file("default"), load_spec_file("no_call")
    assert dist.domains == base.domains and dist.context_type == base.context_type
    specs = SpecSampler(dist, seed=3).sample(20_000)
    none = [s for s in specs if s.no_call]
    assert len(none) / len(specs) == pytest.approx(0.12, abs=0.01)
    assert {s.menu_size for s in none} == {1, 2, 3, 4}
    assert {s.context_type for s in none} == {"single_turn", "multi_turn"}
    calls = [s for s in specs if s.context_type == "single_turn" and not s.no_call]
    assert sum(s.num_calls == 2 for s in calls) / len(calls) == pytest.approx(0.2, abs=0.015)
    from toolr0.cli import app

    res = CliRunner().invoke(app, ["spec", "show", "--file", "no_call"])
    assert res.exit_code == 0 and "menu_size[n=0]" in res.output


def test_packaged_kinds_distribution():
    """`kinds`: the paper's domains, contexts and menus; 53 % one call, 27 % two calls, 20 % no call."""
    base, dist = load_spec_file("no_call"), load_spec_file("kinds")
    assert dist.domains == base.domains and dist.context_type == base.context_type
    assert dist.menu_size == base.menu_size
    specs = SpecSampler(dist, seed=3).sample(20_000)
    shares = {n: sum(s.num_calls == n for s in specs) / len(specs) for n in (0, 1, 2)}
    assert shares == pytest.approx({0: 0.2, 1: 0.53, 2: 0.27}, abs=0.015)
    assert not any(s.num_calls == 2 for s in specs if s.context_type == "multi_turn")


def test_packaged_one_call_distribution():
    """`one_call`: the default's domains, contexts and menus, every spec one gold call (the other kinds are derived
    from solved one-call tasks in the loop)."""
    default, dist = load_spec_file("default"), load_spec_file("one_call")
    assert dist.model_dump(exclude={"num_calls"}) == default.model_dump(exclude={"num_calls"})
    specs = SpecSampler(dist, seed=3).sample(2_000)
    assert {s.num_calls for s in specs} == {1}
    assert {s.context_type for s in specs} == {"single_turn", "multi_turn"}


def test_extends_inherits_and_overrides(tmp_path):
    """`extends:` starts a file from another (a packaged name or a path relative to the file); its own top-level
    keys replace the base's. The packaged `no_call` and `kinds` files are the default plus their own num_calls."""
    default = load_spec_file("default")
    for name in ("no_call", "kinds", "one_call"):
        dist = load_spec_file(name)
        assert dist.model_dump(exclude={"num_calls"}) == default.model_dump(exclude={"num_calls"}), name
        assert dist.num_calls != default.num_calls, name
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text(
        "extends: kinds\ncontext_type: {single_turn: 1.0, multi_turn: 0}\n"
    )
    mine = tmp_path / "sub" / "mine.yaml"
    mine.write_text("extends: base.yaml\ndomains: {robotics: 1.0}\n")
    dist = load_spec_file(mine)
    assert dist.domains == {"robotics": 1.0}
    assert dist.context_type == {"single_turn": 1.0, "multi_turn": 0.0}
    assert dist.num_calls == load_spec_file("kinds").num_calls
    specs = SpecSampler(dist, seed=1).sample(500)
    assert {s.domain for s in specs} == {"robotics"} and {s.context_type for s in specs} == {"single_turn"}


@pytest.mark.parametrize(
    "files, match",
    [
        ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, r"a\.yaml: extends: a cycle"),
        ({"a.yaml": "extends: missing.yaml\n"}, r"missing\.yaml: spec file not found"),
        ({"a.yaml": "extends: [default]\n"}, r"a\.yaml: extends: expected a packaged name"),
        (
            {"a.yaml": "extends: b.yaml\n", "b.yaml": "- 1\n- 2\n"},
            r"a\.yaml: extends: .*b\.yaml is not a spec mapping",
        ),
        ({"a.yaml": "extends: default\nnum_calls: {single_turn: {1: -1}}\n"}, r"a\.yaml: num_calls"),
    ],
)
def test_extends_errors_are_one_line(tmp_path, files, match):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=match) as exc:
        load_spec_file(tmp_path / "a.yaml")
    assert "\n" not in str(exc.value)


def test_presets_choose_their_spec_distribution():
    """The small presets turn no-call tasks on; the paper preset keeps the paper's distribution (none)."""
    from pathlib import Path

    from toolr0.config import load_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    for name, no_call in (("cpu", True), ("quickstart", True), ("paper", False)):
        cfg = load_config(configs / f"{name}.yaml")
        specs = SpecSampler(load_spec_file(cfg.spec_file), seed=0).sample(2000)
        assert any(s.no_call for s in specs) is no_call, name
