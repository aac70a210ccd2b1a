"""`solver_sampling`: how the frozen Solver is sampled for its pass rate p̂ (spec §5.4, §6.5).

One section for both uses of p̂: the Generator's difficulty reward r_diff in phase A and the pass@K difficulty
of stage B are the same estimate (K independent samples at temperature 0.7, success = the whole call list
equals the gold list), so both read these values. Pure pydantic; defaults are the paper's (spec §5.4).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SolverSamplingConfig(BaseModel):
    """K, temperature and token budget of the frozen Solver's samples for p̂ = successes / K."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(8, ge=1, description="Frozen-Solver samples per task for p̂ (spec §5.4: K = 8).")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature of the K samples (spec §5.4).")
    max_tokens: int = Field(2048, ge=1, description="Max new tokens per sample (spec §5.4: 2048).")
