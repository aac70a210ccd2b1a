"""What makes a Generator run and a Solver run different: one recipe per role around `run.fit`.

A recipe holds only its role's sections and answers `fit`'s questions in order (TRL pairs a `GRPOConfig` with
a `GRPOTrainer`; a recipe supplies the rest): which role weights to load, the dataset (first the part that
needs no tokenizer, so a bad input fails before a model loads; then the rest), the reward functions and the
decoding hook of TRL's generation.

- `GeneratorRecipe` (phase A): one prompt per sampled spec (`spec_file`, `prompts.generator_variant`,
  `loop.generator_prompts`), r_fmt / r_valid / r_curr (`rewards`) with the frozen Solver behind
  `frozen_solver` (a `SolverService`, see ARCHITECTURE.md "The frozen Solver"), structured decoding
  (`structured`).
- `SolverRecipe` (phase C): the curriculum in the Solver's format (`prompts`), r_fmt / r_acc (`rewards`).

`generator_recipe(cfg, ...)` / `solver_recipe(cfg, data)` pick those sections from the config tree; the
frozen Solver for phase A comes from `frozen_solver_source(cfg, service)`: a given service, one behind an
OpenAI-compatible server (`inference.backend` openai | vllm), or an in-process one on the frozen weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolr0.core.schema import Task
from toolr0.core.seeds import seed_for
from toolr0.core.solver_format import SolverFormat
from toolr0.errors import ConfigError
from toolr0.training.config import GRPORoleConfig
from toolr0.training.frozen import FrozenSolverSource, RoleInit, frozen_scope, frozen_solver_source
from toolr0.training.grpo import LogitsProcessorFactory
from toolr0.training.roles import Role, RoleModels

if TYPE_CHECKING:  # annotations only: the config tree sits above this layer (it assembles every section)
    from toolr0.config import ToolR0Config
    from toolr0.core.rewards.config import RewardConfig
    from toolr0.inference.grammar import StructuredConfig
    from toolr0.inference.solver_service import SolverService

CurriculumData = str | os.PathLike[str] | list[Task]


@dataclass
class GeneratorRecipe:
    """Phase A: GRPO on the Generator with r_fmt, r_valid, r_curr (spec §5)."""

    grpo: GRPORoleConfig
    rewards: RewardConfig
    structured: StructuredConfig
    frozen_solver: FrozenSolverSource
    spec_file: str | None
    prompt_variant: str
    n_prompts: int
    spec_seed: int
    spec_start: int = 0
    roles_mode: str = "lora"
    service_max_failures: int = 3
    role: Role = "generator"

    def roles_to_load(self) -> tuple[str, ...]:
        # the Solver adapter plays the frozen Solver in a LoRA Generator phase (a full one is loaded or served)
        return ("generator", "solver") if self.roles_mode != "full" else ("generator",)

    def prepare(self) -> None:
        """Before any model loads: the prompts, and a served frozen Solver must answer (every rank checks)."""
        from toolr0.core.spec import load_spec_file
        from toolr0.training import data as tdata

        dist = load_spec_file(self.spec_file)
        self._dataset = tdata.generator_dataset(
            self.n_prompts, self.spec_seed, self.prompt_variant, dist, start=self.spec_start
        )
        if self.frozen_solver.is_remote and self.frozen_solver.remote is not None:
            self.frozen_solver.remote.sampler.health_check()

    def dataset(self, tokenizer: Any) -> Any:
        return self._dataset

    def reward_funcs(
        self, models: RoleModels, args: Any, device: str, init: RoleInit | None, out: Path
    ) -> list[Any]:
        from toolr0.training import reward_funcs as rf

        models.snapshot_for_frozen_solver()  # shared-weights ablation: the frozen Solver = phase-start snapshot
        # p̂ per step to p_hat.jsonl: the loop draws its histograms
        rkw: dict[str, Any] = {"max_failures": self.service_max_failures, "p_hat_path": out / "p_hat.jsonl"}
        src = self.frozen_solver
        if src.is_remote:
            return rf.generator_reward_funcs(self.rewards, src.remote, **rkw)
        service = src.remote if src.remote is not None else src.in_process(models, args, device, init)
        return rf.generator_reward_funcs(self.rewards, service, scope=lambda: frozen_scope(models), **rkw)

    def logits_processor_factory(self, tokenizer: Any) -> LogitsProcessorFactory | None:
        """The Generator's structured-decoding hook when `structured.enabled` (docs/structured_generation.md)."""
        if not getattr(self.structured, "enabled", False):
            return None
        from toolr0.inference import structured

        def factory(row_specs: list[Any]) -> Any:
            return structured.make_logits_processor(
                tokenizer, row_specs, self.structured, num_return_sequences=1
            )

        return factory


@dataclass
class SolverRecipe:
    """Phase C: GRPO on the Solver with r_fmt, r_acc over a curriculum (spec §7)."""

    grpo: GRPORoleConfig
    rewards: RewardConfig
    solver_format: SolverFormat
    data: CurriculumData
    role: Role = "solver"

    def roles_to_load(self) -> tuple[str, ...]:
        return ("solver",)  # phase C needs no Generator

    def prepare(self) -> None:
        from toolr0.training import data as tdata

        self._tasks = self.data if isinstance(self.data, list) else tdata.load_tasks(self.data)
        self._dataset = None
        if not self.solver_format.native:
            self._dataset = tdata.solver_dataset(self._tasks, self.solver_format.variant)

    def dataset(self, tokenizer: Any) -> Any:
        if self._dataset is not None:
            return self._dataset
        # a native Solver prompt is rendered with each task's own tools= (needs the tokenizer)
        from toolr0.inference.hf import render_prompt
        from toolr0.training import data as tdata

        fmt = self.solver_format
        return tdata.solver_dataset(self._tasks, fmt.variant, fmt, lambda m: render_prompt(tokenizer, m))

    def reward_funcs(
        self, models: RoleModels, args: Any, device: str, init: RoleInit | None, out: Path
    ) -> list[Any]:
        from toolr0.training import reward_funcs as rf

        ends = end_token_ids(models.tokenizer, models.model_for("solver"))
        return rf.solver_reward_funcs(self.rewards, self.solver_format, self.grpo.max_completion_length, ends)

    def logits_processor_factory(self, tokenizer: Any) -> LogitsProcessorFactory | None:
        return None


Recipe = GeneratorRecipe | SolverRecipe


def end_token_ids(tokenizer: Any, model: Any) -> tuple[int, ...]:
    """Token ids that end a completion (EOS of the tokenizer and of the generation config, and pad), as TRL
    tells a finished completion from one cut at `max_completion_length`."""
    ids: list[Any] = [getattr(tokenizer, "eos_token_id", None), getattr(tokenizer, "pad_token_id", None)]
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.extend(eos if isinstance(eos, list | tuple) else [eos])
    return tuple(sorted({i for i in ids if isinstance(i, int)}))


def generator_recipe(
    cfg: ToolR0Config,
    *,
    service: SolverService | None = None,
    spec_seed: int | None = None,
    spec_start: int = 0,
    n_prompts: int | None = None,
) -> GeneratorRecipe:
    """Phase A's recipe from the config tree (`service`: the frozen Solver; built here when None)."""
    return GeneratorRecipe(
        grpo=cfg.generator,
        rewards=cfg.rewards,
        structured=cfg.structured,
        frozen_solver=frozen_solver_source(cfg, service),
        spec_file=cfg.spec_file,
        prompt_variant=cfg.prompts.generator_variant,
        n_prompts=n_prompts or cfg.loop.generator_prompts,
        spec_seed=seed_for(cfg.seed, "train") if spec_seed is None else spec_seed,
        spec_start=spec_start,
        roles_mode=cfg.roles.mode,
        service_max_failures=cfg.inference.service_max_failures,
    )


def solver_recipe(cfg: ToolR0Config, data: CurriculumData | None) -> SolverRecipe:
    """Phase C's recipe from the config tree (`data`: JSONL path or list of `Task`)."""
    if data is None:
        raise ConfigError("solver training needs a curriculum (--data curriculum.jsonl)")
    return SolverRecipe(cfg.solver, cfg.rewards, SolverFormat.from_config(cfg.prompts), data)
