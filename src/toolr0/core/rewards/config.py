"""`RewardConfig`: every reward weight and constant of spec §5 and §7, with the spec's defaults.

This is the ``rewards`` section of the one config tree (``toolr0.config.ToolR0Config``). Pure pydantic.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RewardConfig(BaseModel):
    """All reward weights and constants (spec §5 Generator, §7 Solver, §11 extensions)."""

    model_config = ConfigDict(extra="forbid")

    # --- Generator: top-level weights of R_G = r_fmt + r_valid + r_curr (spec §5)
    generator_format_weight: float = Field(1.0, ge=0, description="Weight of r_fmt in the Generator reward.")
    generator_validity_weight: float = Field(
        1.0, ge=0, description="Weight of r_valid in the Generator reward."
    )
    generator_curriculum_weight: float = Field(
        1.0, ge=0, description="Weight of r_curr in the Generator reward."
    )

    # --- Generator format r_fmt (spec §5.2): 1/3 each
    fmt_tags_weight: float = Field(
        1 / 3, ge=0, description="I_tags weight: all four tags present, non-empty."
    )
    fmt_tools_weight: float = Field(
        1 / 3, ge=0, description="I_tools weight: tools parse to a list of dicts."
    )
    fmt_gold_weight: float = Field(1 / 3, ge=0, description="I_gold weight: gold calls parse and normalise.")

    # --- Generator validity r_valid (spec §5.3, §11)
    valid_exists_weight: float = Field(
        0.4, ge=0, description="I_exists weight: gold call names are in the menu."
    )
    valid_args_weight: float = Field(0.4, ge=0, description="I_args weight: required parameters present.")
    valid_ground_weight: float = Field(
        0.2, ge=0, description="I_ground weight: values occur in the question."
    )
    validity_mode: Literal["all_pass", "fraction", "first_call"] = Field(
        "all_pass",
        description="How indicators combine over gold calls: all_pass (spec §11 default), fraction of calls "
        "passing, or first_call (the reference code's behaviour, for comparison only).",
    )

    # --- Generator curriculum r_curr (spec §5.4, §11 ablations); p̂ and the judge: the `frozen_solver` section
    difficulty_weight: float = Field(
        0.5, ge=0, description="Weight of r_diff in r_curr (0 = the no-difficulty-reward ablation)."
    )
    semantic_weight: float = Field(0.5, ge=0, description="Weight of r_sem (the judge term) in r_curr.")
    p_low: float = Field(0.25, ge=0, le=1, description="Lower edge of the difficulty band.")
    p_high: float = Field(0.75, ge=0, le=1, description="Upper edge of the difficulty band.")
    sigma: float = Field(0.12, gt=0, description="Gaussian fall-off width outside the band.")
    band_mode: Literal["gaussian", "hard"] = Field(
        "gaussian", description="gaussian fall-off (spec) or hard band edges (Table 3 ablation)."
    )

    # --- Solver (spec §7): top-level weights of R_S = r_fmt + r_acc
    solver_format_weight: float = Field(1.0, ge=0, description="Weight of the Solver format reward.")
    solver_accuracy_weight: float = Field(1.0, ge=0, description="Weight of the Solver accuracy reward.")
    sfmt_present_weight: float = Field(
        0.3, ge=0, description="Solver format: answer block present, non-empty."
    )
    sfmt_parse_weight: float = Field(0.3, ge=0, description="Solver format: answer parses (relaxed).")
    sfmt_norm_weight: float = Field(0.4, ge=0, description="Solver format: answer normalises to >= 1 call.")
    acc_name_weight: float = Field(0.2, ge=0, description="Pair score weight of the name match n(p,c).")
    acc_keys_weight: float = Field(0.3, ge=0, description="Pair score weight of the key-set F1 k(p,c).")
    acc_values_weight: float = Field(0.5, ge=0, description="Pair score weight of the value match v(p,c).")
    extra_call_alpha: float = Field(0.25, ge=0, description="Extra-call penalty alpha: 1/(1+alpha*extra).")
    no_call_full_format: bool = Field(
        True,
        description="On a no-call task (gold []), the right no-call answer earns the format reward's '>= 1 call' "
        "share too (1.0, not 0.6). Not in the paper, which has no no-call tasks (its preset has none): on the "
        "spec §7.2 grid a wrong call in good form out-earns the right refusal on format (RESULTS.md, v3 run).",
    )
    allow_unclosed_answer: bool = Field(
        False,
        description="Accept a final <tool_call_answer> left unclosed at the end of generation (off = faithful to spec "
        "§7.2); in the native format, a Solver GRPO reply cut at max_completion_length (docs/solver_format.md). "
        "One setting for every reading of a Solver reply: the Solver's GRPO reward and the frozen Solver's p̂ and "
        "cross-verification alike (build_solver_service passes it on), so difficulty counts what training rewards.",
    )

    @model_validator(mode="after")
    def _band_ordered(self) -> RewardConfig:
        if self.p_low > self.p_high:
            raise ValueError(f"p_low ({self.p_low}) must not exceed p_high ({self.p_high})")
        return self
