"""Generator and Solver rewards (spec §5, §7): pure functions returning a value in range plus a reason."""

from toolr0.core.rewards.base import RewardValue
from toolr0.core.rewards.config import RewardConfig
from toolr0.core.rewards.generator import (
    GeneratorRewardBreakdown,
    curriculum_reward,
    difficulty_reward,
    format_reward,
    generator_rewards,
    judge_score_from_attempts,
    parse_judge_score,
    semantic_reward,
    task_from_generator_text,
    validity_reward,
)
from toolr0.core.rewards.solver import (
    solver_accuracy_reward,
    solver_accuracy_score,
    solver_format_reward,
    solver_format_score,
    solver_total,
)

__all__ = [
    "GeneratorRewardBreakdown",
    "RewardConfig",
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
