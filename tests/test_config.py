"""The one config tree: defaults, one-line errors naming the field, overrides, ablations, presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolr0.config import (
    ToolR0Config,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
    parse_overrides,
)
from toolr0.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SECTIONS = (
    "model",
    "inference",
    "prompts",
    "rewards",
    "curriculum",
    "structured",
    "roles",
    "generator",
    "solver",
    "loop",
)


def test_defaults_construct_and_roundtrip(tmp_path):
    cfg = ToolR0Config()
    for s in SECTIONS:
        assert getattr(cfg, s) is not None
    assert cfg.loop.iterations == 3 and cfg.loop.n_candidates == 10000 and cfg.frozen_solver.verify.tau == 0.2
    p = tmp_path / "c.yaml"
    p.write_text(dump_config(cfg))
    again = load_config(p)
    assert again == cfg
    assert config_to_dict(again) == config_to_dict(cfg)


def test_every_section_is_its_owner_class():
    # Guards against a placeholder left behind: each section is the owner's real pydantic class.
    cfg = ToolR0Config()
    owners = {
        "prompts": "toolr0.core.prompts",
        "rewards": "toolr0.core.rewards.config",
        "curriculum": "toolr0.core.curriculum",
        "structured": "toolr0.inference.grammar",
        "roles": "toolr0.training.config",
        "generator": "toolr0.training.config",
        "loop": "toolr0.selfplay.config",
    }
    for s, mod in owners.items():
        assert type(getattr(cfg, s)).__module__ == mod, s


def test_bad_value_is_one_line_naming_the_field(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("generator:\n  learning_rate: fast\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("config.yaml: generator.learning_rate: Input should be a valid number")


def test_unknown_key_and_section_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"loop\.n_candidate: Extra inputs"):
        config_from_dict({"loop": {"n_candidate": 5}})
    with pytest.raises(ConfigError, match="bogus"):
        config_from_dict({"bogus": {}})


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("loop: [1, 2\n")
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_config(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(lst)


def test_overrides():
    assert parse_overrides(["loop.iterations=2", "model.name=x/y"]) == {
        "loop": {"iterations": 2},
        "model": {"name": "x/y"},
    }
    cfg = load_config(CONFIGS / "quickstart.yaml", ["loop.iterations=2", "solver.learning_rate=3e-5"])
    assert cfg.loop.iterations == 2 and cfg.solver.learning_rate == 3e-5
    cfg = load_config(None, {"frozen_solver.k": 4})
    assert cfg.frozen_solver.k == 4
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["loop.iterations"])
    with pytest.raises(ConfigError, match="loop.iterations"):
        load_config(None, ["loop.iterations=0"])


def test_table3_ablations_are_one_switch_each():
    cfg = load_config(None, ["roles.mode=shared", "rewards.band_mode=hard", "rewards.difficulty_weight=0"])
    assert cfg.roles.mode == "shared" and cfg.rewards.band_mode == "hard"
    assert cfg.rewards.difficulty_weight == 0.0 and cfg.rewards.semantic_weight == 0.5
    base = ToolR0Config()
    assert base.roles.mode == "lora" and base.rewards.band_mode == "gaussian" and base.rewards.difficulty_weight
    assert load_config(None, ["loop.freeze_generator=true"]).loop.freeze_generator


@pytest.mark.parametrize(
    "key,value,replacement",
    [
        ("loop.k_passk", 4, "frozen_solver.k"),
        ("rewards.K", 4, "frozen_solver.k"),
        ("rewards.solver_max_tokens", 9, "frozen_solver.max_tokens"),
        ("loop.passk_temperature", 0.5, "frozen_solver.temperature"),
        ("solver_sampling.k", 4, "frozen_solver.k"),
        ("rewards.pass_success", "multiset", "frozen_solver.pass_success"),
        ("rewards.judge_retries", 2, "frozen_solver.judge.retries"),
        ("loop.k_verify", 2, "frozen_solver.verify.k"),
        ("loop.tau", 0.5, "frozen_solver.verify.tau"),
        ("loop.cross_verify_mode", "full_call", "frozen_solver.verify.mode"),
        ("loop.cross_verify_no_call", False, "frozen_solver.verify.no_call"),
        ("loop.shared_weights", True, "roles.mode: shared"),
        ("loop.no_difficulty_reward", True, "rewards.difficulty_weight: 0"),
        ("loop.hard_band_edges", True, "rewards.band_mode: hard"),
        ("loop.seed", 1, "seed"),
        ("generator.seed", 1, "seed"),
        ("curriculum.seed", 1, "seed"),
    ],
)
def test_removed_keys_fail_naming_the_replacement(tmp_path, key, value, replacement):
    section, name = key.split(".")
    p = tmp_path / "old.yaml"
    p.write_text(f"{section}:\n  {name}: {str(value).lower()}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert msg.startswith(f"old.yaml: {key} was removed; use {replacement}") and "\n" not in msg
    with pytest.raises(ConfigError, match=f"^override: {key} was removed; use {replacement}"):
        load_config(None, [f"{key}={value}"])
    with pytest.raises(ConfigError, match=f"{key} was removed"):
        config_from_dict({section: {name: value}})


def test_removed_keys_table_names_only_keys_that_are_gone():
    from toolr0.config import REMOVED_KEYS

    for key in REMOVED_KEYS:
        node = ToolR0Config().model_dump()
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.get(p, {})  # a removed section (solver_sampling) is gone too
        assert leaf not in node, key


def test_one_master_seed_derives_every_other():
    from toolr0.core.seeds import USES, derive_seed, seed_for

    assert seed_for(13, "train") == seed_for(13, "service") == 13
    assert seed_for(13, "gen", 1, 0) == derive_seed(13, 1, "gen", 0)  # the values runs used before
    assert seed_for(13, "select", 2) == derive_seed(13, 2, "select")
    derived = {seed_for(13, u, 1, 0) for u in USES if u not in ("train", "service")}
    assert len(derived) == len(USES) - 2
    with pytest.raises(ValueError, match="unknown seed use"):
        seed_for(13, "bogus", 1)


@pytest.mark.parametrize("name", ["quickstart", "cpu", "paper"])
def test_presets_validate(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.loop.iterations >= 1
    if name == "paper":
        assert cfg.model.name == "Qwen/Qwen2.5-1.5B-Instruct"
        assert cfg.roles.mode == "full" and cfg.generator.use_vllm
        assert cfg.inference.backend == "openai" and cfg.server.managed  # the frozen Solver is a vllm serve
        assert not cfg.structured.enabled and cfg.prompts.generator_variant == "reference"
        assert (cfg.loop.iterations, cfg.loop.n_candidates, cfg.curriculum.n_final) == (3, 10000, 2000)
        assert cfg.generator.max_steps == cfg.solver.max_steps == 50
        ss = cfg.frozen_solver  # spec §5.4: K = 8 at 0.7, 2048 tokens, for r_diff and pass@K alike
        assert (ss.k, ss.temperature, ss.max_tokens, cfg.seed) == (8, 0.7, 2048, 13)
    else:
        assert cfg.model.name == "default" and cfg.roles.mode == "lora"
        assert cfg.structured.enabled
        # tools and gold calls first, then a question that states their values (bench/RESULTS.md, issue 28)
        assert cfg.prompts.generator_variant == "answer_first" and cfg.structured.order == "answer_first"
        assert cfg.structured.ground_calls
        assert not cfg.curriculum.keep_zero  # no task with gold nobody produced enters the curriculum
    if name == "cpu":  # faithful strict Solver format reward
        assert not cfg.rewards.allow_unclosed_answer
        # cross-verification back on with the native Solver format (it keeps the coherent tasks there)
        assert cfg.loop.cross_verify and cfg.prompts.solver_format == "native"
        # ... except for no-call tasks, which the base Solver's eagerness to call would all drop
        assert not cfg.frozen_solver.verify.no_call
    if name == "quickstart":
        assert cfg.loop.iterations == 1 and cfg.loop.n_candidates <= 24 and cfg.frozen_solver.k == 4
        assert cfg.generator.max_steps == 1
        assert not cfg.loop.cross_verify


def test_an_override_changes_the_resolved_config():
    a = ToolR0Config()
    b = load_config(None, ["seed=14"])
    assert config_to_dict(a) != config_to_dict(b) and config_to_dict(b)["seed"] == 14
