"""The loop's view of the sampled Generator (`seam.CandidateGenerator`) and the GRPO progress callback, shared
by the engines (`engine.RoleEngine`). The frozen Solver needs no view: `inference.solver_service.SolverService`
is the `seam.FrozenSolver` itself."""

from __future__ import annotations

from typing import Any

from toolr0.config import ToolR0Config
from toolr0.core.prompts import generator_stop
from toolr0.inference.base import Sampler
from toolr0.selfplay.progress import Reporter


class _Generator:
    """Samples one completion per Generator prompt (`seam.CandidateGenerator`; structured decoding when
    enabled)."""

    def __init__(self, sampler: Sampler, adapter: str | None, cfg: ToolR0Config):
        self.sampler, self.adapter, self.cfg = sampler, adapter, cfg

    def generate(self, messages: list[list[dict[str, str]]], specs: list[Any], seed: int) -> list[str]:
        from toolr0.inference.base import SamplingParams

        lp = self.cfg.loop
        params = SamplingParams(
            n=1,
            temperature=lp.gen_temperature,
            top_p=lp.gen_top_p,
            max_new_tokens=lp.gen_max_tokens,
            stop=generator_stop(self.cfg.prompts.generator_variant),
            seed=seed,
        )
        if getattr(self.cfg.structured, "enabled", False):
            from toolr0.inference.structured import constrained

            with constrained(self.sampler, specs, self.cfg.structured) as s:
                out = s.generate(messages, params, adapter=self.adapter)
        else:
            out = self.sampler.generate(messages, params, adapter=self.adapter)
        st = getattr(self.sampler, "last_stats", None)
        self.last_stats = (
            {"completion_tokens": st.completion_tokens, "seconds": round(st.seconds, 3)}
            if st is not None
            else {}
        )
        return [o[0] if o else "" for o in out]


def _progress_callback(reporter: Reporter, role: str) -> Any:
    from transformers import TrainerCallback

    class _StepProgress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers signature
            reporter.advance(completed=state.global_step)
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if logs:
                means = {
                    k[8:-5]: v for k, v in logs.items() if k.startswith("rewards/") and k.endswith("/mean")
                }
                if "reward" in logs:
                    means["total"] = logs["reward"]
                short = {
                    f"{role[:3]}:{k.removeprefix(role + '_')}": float(v)
                    for k, v in means.items()
                    if isinstance(v, int | float)
                }
                reporter.update(rewards=short)
            return control

    return _StepProgress()
