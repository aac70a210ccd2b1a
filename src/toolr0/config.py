"""The one config tree: `ToolR0Config` (every section of every layer) and `load_config` (YAML + overrides).

Each section class lives in its owner's module; this module only assembles them, refuses keys that were
removed or renamed (`REMOVED_KEYS`, each with its replacement), and turns validation errors into one-line
`ConfigError`s that name the field.

Every knob has one home. The Table 3 ablations (spec §9.4, §11) are one switch each:
shared weights `roles.mode: shared`, frozen Generator `loop.freeze_generator: true`, no difficulty reward
`rewards.difficulty_weight: 0`, hard band edges `rewards.band_mode: hard`. Everything the frozen Solver is
asked (p̂ for phase A's r_diff and stage B's pass@K alike, cross-verification, judge, difficulty label) is
`frozen_solver`; every seed derives from `seed` (`toolr0.core.seeds.seed_for`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from toolr0.core.curriculum import CurriculumConfig
from toolr0.core.frozen_solver import FrozenSolverConfig
from toolr0.core.prompts import PromptConfig, generator_order
from toolr0.core.rewards.config import RewardConfig
from toolr0.core.yamlfile import parse_yaml, read_user_file
from toolr0.errors import ConfigError
from toolr0.inference.config import InferenceConfig, ModelConfig
from toolr0.inference.grammar import StructuredConfig
from toolr0.inference.server import ServerConfig
from toolr0.selfplay.config import LaunchConfig, LoopConfig, server_gpu_problem
from toolr0.training.config import GRPORoleConfig, RolesConfig


class ToolR0Config(BaseModel):
    """Everything a toolr0 run needs; every field has a default (the paper's / reference code's values)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelConfig = Field(
        default_factory=ModelConfig, description="Which base model and how to load it."
    )
    inference: InferenceConfig = Field(default_factory=InferenceConfig, description="Sampling backend.")
    server: ServerConfig = Field(
        default_factory=ServerConfig, description="Managed frozen-Solver server (openai backend)."
    )
    seed: int = Field(
        13, description="Master seed: every seed of a run is derived from it (toolr0.core.seeds.seed_for)."
    )
    spec_file: str | None = Field(None, description="Task-spec YAML (None: the packaged default spec).")
    prompts: PromptConfig = Field(default_factory=PromptConfig, description="Prompt variants.")
    rewards: RewardConfig = Field(default_factory=RewardConfig, description="Reward weights and constants.")
    frozen_solver: FrozenSolverConfig = Field(
        default_factory=FrozenSolverConfig,
        description="Everything the frozen Solver is asked: p̂ (phase A's r_diff, stage B's pass@K), "
        "cross-verification, judge, difficulty label (spec §5.4, §6.4, §6.5).",
    )
    curriculum: CurriculumConfig = Field(
        default_factory=CurriculumConfig, description="Curriculum selection."
    )
    structured: StructuredConfig = Field(
        default_factory=StructuredConfig, description="Grammar-constrained Generator decoding."
    )
    roles: RolesConfig = Field(
        default_factory=RolesConfig, description="Parameters per role (LoRA/full/shared)."
    )
    generator: GRPORoleConfig = Field(default_factory=GRPORoleConfig, description="Generator GRPO knobs.")
    solver: GRPORoleConfig = Field(default_factory=GRPORoleConfig, description="Solver GRPO knobs.")
    loop: LoopConfig = Field(default_factory=LoopConfig, description="Self-play loop counts and ablations.")
    launch: LaunchConfig = Field(
        default_factory=LaunchConfig, description="Phases in-process or as child processes (GPUs, nodes)."
    )

    @model_validator(mode="after")
    def _sequential_curriculum(self) -> ToolR0Config:
        if self.curriculum.order == "easy_to_hard":
            self.solver.shuffle = False  # spec §11: a sorted curriculum needs a sequential sampler
        return self

    @model_validator(mode="after")
    def _zero_only_cross_verified(self) -> ToolR0Config:
        # spec §11 keeps never-solved tasks only when cross-verification stands behind their gold; without it a
        # p̂ = 0 task is gold nobody produced (the quickstart's were prompt echoes with an invented argument)
        if self.curriculum.keep_zero and not self.loop.cross_verify:
            raise ValueError(
                "curriculum.keep_zero keeps p̂ = 0 tasks as hard only when they are cross-verified (spec §11): "
                "set loop.cross_verify: true or curriculum.keep_zero: false"
            )
        return self

    @model_validator(mode="after")
    def _grammar_order_from_prompt(self) -> ToolR0Config:
        """The grammar's block order is the Generator prompt variant's (one knob: prompts.generator_variant)."""
        order = generator_order(self.prompts.generator_variant)
        if "order" in self.structured.model_fields_set and self.structured.order != order:
            raise ValueError(
                f"structured.order {self.structured.order} contradicts the prompt variant "
                f"{self.prompts.generator_variant}'s generator.order {order}; drop structured.order"
            )
        self.structured.__dict__["order"] = order  # derived: not marked as set, so a reload may re-derive it
        return self

    @model_validator(mode="after")
    def _check_server(self) -> ToolR0Config:
        if self.server.managed and self.inference.backend != "openai":
            raise ValueError(
                f"server.managed needs inference.backend: openai (got {self.inference.backend}): the loop "
                "queries the server it starts through the OpenAI-compatible client"
            )
        if self.server.managed:
            problem = server_gpu_problem(self.launch, self.server.gpus)
            if problem:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _check_distributed(self) -> ToolR0Config:
        # DeepSpeed + save_only_model, ZeRO-3/FSDP + an in-process Solver on the trained weights (one-line error)
        from toolr0.training.preflight import check_launch

        check_launch(self)
        return self


#: Keys that were removed or renamed: dotted path -> what to use instead. A config file or `--set` override that
#: still uses one fails with a one-line `ConfigError` naming the replacement.
REMOVED_KEYS: dict[str, str] = {
    # everything the frozen Solver is asked lives in one section, `frozen_solver` (issue 30; spec §5.4, §6.4, §6.5)
    "rewards.K": "use frozen_solver.k",
    "rewards.solver_temperature": "use frozen_solver.temperature",
    "rewards.solver_max_tokens": "use frozen_solver.max_tokens",
    "loop.k_passk": "use frozen_solver.k",
    "loop.passk_temperature": "use frozen_solver.temperature",
    "loop.passk_max_tokens": "use frozen_solver.max_tokens",
    "solver_sampling.k": "use frozen_solver.k",
    "solver_sampling.temperature": "use frozen_solver.temperature",
    "solver_sampling.max_tokens": "use frozen_solver.max_tokens",
    "rewards.pass_success": "use frozen_solver.pass_success",
    "rewards.judge_temperature": "use frozen_solver.judge.temperature",
    "rewards.judge_max_tokens": "use frozen_solver.judge.max_tokens",
    "rewards.judge_retries": "use frozen_solver.judge.retries",
    "rewards.judge_fallback_score": "use frozen_solver.judge.fallback_score",
    "rewards.judge_retry_suffix": "use frozen_solver.judge.retry_suffix",
    "loop.k_verify": "use frozen_solver.verify.k",
    "loop.verify_temperature": "use frozen_solver.verify.temperature",
    "loop.verify_top_p": "use frozen_solver.verify.top_p",
    "loop.verify_max_tokens": "use frozen_solver.verify.max_tokens",
    "loop.cross_verify_mode": "use frozen_solver.verify.mode",
    "loop.tau": "use frozen_solver.verify.tau",
    "loop.cross_verify_no_call": "use frozen_solver.verify.no_call",
    # Table 3 ablations: one switch each, the setting itself
    "loop.shared_weights": "use roles.mode: shared",
    "loop.no_difficulty_reward": "use rewards.difficulty_weight: 0",
    "loop.hard_band_edges": "use rewards.band_mode: hard",
    # one master seed; the others are derived from it (toolr0.core.seeds.seed_for)
    "loop.seed": "use seed (top level)",
    "curriculum.seed": "use seed (top level; the selection seed is derived from it)",
    "generator.seed": "use seed (top level; both roles train with it)",
    "solver.seed": "use seed (top level; both roles train with it)",
    "loop.record_spec_compliance": "spec compliance is always recorded (stage_counts.json); drop the key",
    # GRPO reward weights live only in the rewards section (spec §5, §7)
    "generator.reward_weights": "use rewards.generator_*_weight (format, validity, curriculum)",
    "solver.reward_weights": "use rewards.solver_*_weight (format, accuracy)",
}


def _dotted_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in tree.items():
        path = f"{prefix}{k}"
        out.append(path)
        if isinstance(v, dict):
            out += _dotted_keys(v, path + ".")
    return out


def check_removed_keys(data: dict[str, Any], source: str) -> None:
    """Raise `ConfigError` for the first key of `data` listed in `REMOVED_KEYS`."""
    for key in _dotted_keys(data):
        if key in REMOVED_KEYS:
            raise ConfigError(f"{source}: {key} was removed; {REMOVED_KEYS[key]}")


def _format_error(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{source}: {loc}: {err.get('msg', 'invalid value')}{more}"


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            node[p] = nxt
        node = nxt
    node[parts[-1]] = value


def parse_overrides(items: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """`["loop.iterations=2", "model.name=x"]` or `{"loop.iterations": 2}` → a nested dict (values YAML-parsed)."""
    tree: dict[str, Any] = {}
    if not items:
        return tree
    pairs: list[tuple[str, Any]]
    if isinstance(items, dict):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            if "=" not in item:
                raise ConfigError(f"override {item!r}: expected key=value (e.g. loop.iterations=2)")
            k, v = item.split("=", 1)
            try:
                pairs.append((k.strip(), yaml.safe_load(v)))
            except yaml.YAMLError:
                pairs.append((k.strip(), v))
    for k, v in pairs:
        _set_dotted(tree, k, v)
    return tree


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def config_from_dict(data: dict[str, Any], source: str = "config") -> ToolR0Config:
    """Validate a plain dict; errors become one-line `ConfigError`s naming the field (or the replacement of a
    removed key)."""
    check_removed_keys(data, source)
    try:
        return ToolR0Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from None


def load_config(
    path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None
) -> ToolR0Config:
    """Load a YAML config (None: all defaults), apply dotted overrides, validate. Raises `ConfigError`."""
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        p = Path(path)
        source = p.name
        loaded = parse_yaml(read_user_file(p, "config file"), source)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: top level must be a mapping of sections")
        check_removed_keys(loaded, source)
        data = loaded
    extra = parse_overrides(overrides)
    check_removed_keys(extra, "override")
    return config_from_dict(_deep_merge(data, extra), source)


def config_to_dict(cfg: ToolR0Config) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (every default filled in)."""
    return cfg.model_dump(mode="json")


def dump_config(cfg: ToolR0Config) -> str:
    """The resolved config as YAML (what a run directory's `config.yaml` holds)."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True)
