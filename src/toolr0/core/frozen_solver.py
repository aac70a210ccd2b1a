"""`frozen_solver`: everything the frozen Solver is asked, and how (spec §5.4, §6.4, §6.5).

The frozen Solver S_{t-1} answers four kinds of query, all through one `inference.solver_service.SolverService`
built by `build_solver_service` from this one section:

- p̂ = successes / K (top-level `k`, `temperature`, `max_tokens`, `pass_success`): phase A's r_diff and stage B's
  pass@K difficulty are the same estimate, so both read these values;
- cross-verification of stage B (`verify`: k, τ, near-greedy sampling, names or whole calls, no-call tasks);
- the judge score of phase A's r_sem (`judge`);
- the reference code's easy|medium|hard difficulty label of stage B (`label`).

How a Solver reply is read (an unclosed final answer) is `rewards.allow_unclosed_answer`: one setting for the
Solver's own GRPO reward and the frozen Solver's reading alike. Pure pydantic; defaults are the paper's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class VerifyConfig(BaseModel):
    """Cross-verification (spec §6.4, §11): k near-greedy samples per task, agreement with the gold calls."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(10, ge=1, description="Solver samples per task for cross-verification.")
    temperature: float = Field(0.001, ge=0, description="Cross-verification temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Cross-verification top-p.")
    max_tokens: int = Field(1024, ge=1, description="Cross-verification max new tokens.")
    mode: Literal["names", "full_call"] = Field(
        "names", description="names: ordered tool names agree (reference); full_call: whole calls agree."
    )
    tau: float = Field(0.2, ge=0, le=1, description="Keep a task if agreement >= tau.")
    no_call: bool = Field(
        True,
        description="Cross-verify no-call tasks (gold []) too. False: they skip it, because a Solver that "
        "calls a tool on every request (the 0.5B base model) rejects exactly the tasks that would teach it "
        "restraint (RESULTS.md, issue 13); they still pass verification and pass@K.",
    )


class JudgeConfig(BaseModel):
    """The judge score 1-5 behind phase A's r_sem (spec §5.4)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.1, ge=0, description="Judge sampling temperature.")
    max_tokens: int = Field(16, ge=1, description="Judge max new tokens.")
    retries: int = Field(3, ge=1, description="Judge attempts before falling back.")
    fallback_score: int = Field(3, ge=1, le=5, description="Judge score used when every attempt fails.")
    retry_suffix: str = Field(
        "reply with only a single digit 1-5", description="Appended to the judge prompt on a retry."
    )


class LabelConfig(BaseModel):
    """The reference code's easy|medium|hard label (spec §6.5, `curriculum.difficulty_source: llm|both`)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.0, ge=0, description="Label sampling temperature (reference: greedy).")
    max_tokens: int = Field(10, ge=1, description="Label max new tokens (reference: 10).")


class FrozenSolverConfig(BaseModel):
    """The `frozen_solver` section: p̂ sampling at the top level, then cross-verification, judge and label."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(8, ge=1, description="Frozen-Solver samples per task for p̂ (spec §5.4: K = 8).")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature of the K samples (spec §5.4).")
    max_tokens: int = Field(2048, ge=1, description="Max new tokens per sample (spec §5.4: 2048).")
    pass_success: Literal["ordered", "multiset"] = Field(
        "ordered",
        description="p̂ success test (r_diff and pass@K): full call list equal as ordered canonical JSON (spec "
        "§11 default) or as a multiset.",
    )
    verify: VerifyConfig = Field(default_factory=VerifyConfig, description="Cross-verification (spec §6.4).")
    judge: JudgeConfig = Field(default_factory=JudgeConfig, description="Judge score of r_sem (spec §5.4).")
    label: LabelConfig = Field(default_factory=LabelConfig, description="Difficulty label (spec §6.5).")
