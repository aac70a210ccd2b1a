"""Generator and Solver rewards (spec §5, §7): pure functions returning a value in range plus a reason; each
role's weighted total is declared term by term in :mod:`toolr0.core.rewards.terms`."""

from toolr0.core.rewards.base import RewardValue
from toolr0.core.rewards.config import RewardConfig
from toolr0.core.rewards.generator import (
    curriculum_reward,
    difficulty_reward,
    format_reward,
    task_from_generator_text,
    validity_reward,
)
from toolr0.core.rewards.judge import judge_score_from_attempts, parse_judge_score, semantic_reward
from toolr0.core.rewards.solver import (
    solver_accuracy_reward,
    solver_accuracy_score,
    solver_format_reward,
    solver_format_score,
)
from toolr0.core.rewards.terms import (
    GENERATOR_TERMS,
    SOLVER_TERMS,
    GeneratorRewardBreakdown,
    RewardTerm,
    generator_rewards,
    solver_total,
)

__all__ = [
    "GENERATOR_TERMS",
    "SOLVER_TERMS",
    "GeneratorRewardBreakdown",
    "RewardConfig",
    "RewardTerm",
    "RewardValue",
    "curriculum_reward",
    "difficulty_reward",
    "format_reward",
    "generator_rewards",
    "judge_score_from_attempts",
    "parse_judge_score",
    "semantic_reward",
    "solver_accuracy_reward",
    "solver_accuracy_score",
    "solver_format_reward",
    "solver_format_score",
    "solver_total",
    "task_from_generator_text",
    "validity_reward",
]
