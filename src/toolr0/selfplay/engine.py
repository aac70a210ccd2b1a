"""The models behind the self-play loop (the `seam.Engine` it calls): which weights play which role, and how
they are sampled/trained.

`RoleEngine` (default, hf backend) keeps ONE `RoleModels` in memory (`training.roles`: a frozen base with a LoRA
adapter per role, or full models, or the shared-weights ablation) and reuses it across stages and
iterations: the Generator samples candidates through its adapter, the frozen Solver cross-verifies and
labels through its adapter (S_{t-1}: phase C of this iteration has not run yet), and training updates the
role's adapter in place (then saves it). After a resume the adapters are reloaded from the run's
checkpoints, so the in-memory state always equals the recorded checkpoints.

Other backends (vllm/openai) sample through a fresh sampler per checkpoint; training still goes through
`toolr0.training.run` (TRL). One in-process vLLM engine at a time: the previous one is torn down
(`VLLMSampler.close`) before the next opens and before a GRPO phase starts (TRL's colocated engine would sit
beside it), and the RANK / WORLD_SIZE / MASTER_* variables that engine sets are restored after the phase. On a
GPU the paper preset avoids sharing a process at all: `launch.mode: processes` (docs/launch.md). With `server.managed` (openai backend) the engine runs the server itself
(`served.ServedSolver`): phase A's curriculum reward and judge query a server serving the frozen
Solver, stage B samples through a server serving the checkpoint it needs (restarted when that changes, so
every iteration serves the new Solver), and the server is stopped before Solver training and at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolr0.config import ToolR0Config
from toolr0.core.prompts import generator_stop
from toolr0.core.seeds import seed_for
from toolr0.errors import ToolR0Error
from toolr0.inference.base import Sampler
from toolr0.selfplay.progress import Reporter
from toolr0.selfplay.rundir import RunDir
from toolr0.selfplay.seam import Engine
from toolr0.selfplay.train_record import train_record
from toolr0.selfplay.weights import RoleWeights

if TYPE_CHECKING:
    from toolr0.inference.solver_service import SolverService


class RoleEngine(RoleWeights):
    """Both roles on one in-memory `RoleModels` (see module docstring; the weights' bookkeeping is
    `weights.RoleWeights`)."""

    # ------------------------------------------------------------------ loop interface
    def begin_iteration(self, t: int) -> None:
        """New iteration: the Solver changed, so every Solver cache is dropped (spec §10.10)."""
        for s in self._services.values():
            s.clear()
        self._services.clear()

    def generator(self, checkpoint: str | None, t: int) -> _Generator:
        self.ensure(generator=checkpoint)
        sampler, adapter = self._role_sampler("generator")
        return _Generator(sampler, adapter, self.cfg)

    def solver(self, checkpoint: str | None, t: int) -> SolverService:
        """The frozen Solver at `checkpoint` for cross-verification and difficulty (cache scoped to t)."""
        key = (checkpoint, t)
        if key not in self._services:
            if self.shared:
                self.ensure(generator=checkpoint)
            else:
                self.ensure(solver=checkpoint)
            from toolr0.inference.solver_service import build_solver_service

            sampler, adapter = self._role_sampler("solver")
            ck = f"solver:{checkpoint or 'base'}"
            self._services[key] = build_solver_service(self.cfg, sampler, checkpoint_id=ck, adapter=adapter)
        return self._services[key]

    def _frozen_service(self, frozen_solver: str | None) -> SolverService:
        """Phase A's frozen Solver for r_curr: behind the managed server (health-checked before training
        starts), else in-process (after the shared-mode snapshot is taken)."""
        from toolr0.inference.solver_service import build_solver_service

        if self.cfg.server.managed:
            sampler = self.serve(frozen_solver).sampler(timeout_s=self.cfg.inference.timeout_s)
            sampler.health_check()
            ck = f"served-solver:{frozen_solver or 'base'}"
            return build_solver_service(self.cfg, sampler, checkpoint_id=ck)
        rm = self._models()
        adapter = rm.frozen_solver_adapter()
        reuse = rm.peft_model is not None and self._sampler is not None
        sampler = self._sampler if reuse else self._hf_sampler(rm.frozen_solver_model())
        ck = f"frozen-solver:{adapter or 'full'}"
        return build_solver_service(self.cfg, sampler, checkpoint_id=ck, adapter=adapter)

    def train_generator(
        self,
        *,
        iteration: int,
        init: str | None,
        frozen_solver: str | None,
        out_dir: Path,
        reporter: Reporter,
    ) -> dict[str, Any]:
        from toolr0.training.run import train_generator

        self._begin_training(keep_server=True)
        if self.shared:
            self.ensure(generator=init)
        else:
            self.ensure(generator=init, solver=frozen_solver)
        self._models().snapshot_for_frozen_solver()  # shared ablation: S = phase-start snapshot (else no-op)
        service = self._frozen_service(frozen_solver)
        try:
            res = train_generator(
                self.cfg,
                out_dir,
                models=self.models,
                service=service,
                resume=True,
                spec_seed=seed_for(self.cfg.seed, "generator_prompts", iteration),
                callbacks=[_progress_callback(reporter, "generator")],
                echo=reporter.note,
            )
        finally:
            self._end_training()
            self.stop_server()  # phase A is over; the next phase serves (or trains) other weights
        service.clear()
        self.loaded[self._slot("generator")] = res.final_dir
        self._services.clear()
        return train_record(res)

    def train_solver(
        self, *, iteration: int, init: str | None, curriculum: Path, out_dir: Path, reporter: Reporter
    ) -> dict[str, Any]:
        from toolr0.training.run import train_solver

        self._begin_training()
        self.ensure(solver=init)
        try:
            res = train_solver(
                self.cfg,
                str(curriculum),
                out_dir,
                models=self.models,
                resume=True,
                callbacks=[_progress_callback(reporter, "solver")],
                echo=reporter.note,
            )
        finally:
            self._end_training()
        self.loaded[self._slot("solver")] = res.final_dir
        self._services.clear()
        return train_record(res)


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


def build_engine(cfg: ToolR0Config, run: RunDir, in_process: bool = False) -> Engine:
    """The engine for `cfg`: in-process `RoleEngine` (stage-B sampling through vllm/openai when configured),
    or with `launch.mode: processes` a `launch.ProcessEngine` running each phase as a child (`in_process`
    forces the former: a stage-B child)."""
    if cfg.launch.mode == "processes" and not in_process:
        from toolr0.selfplay.launch import ProcessEngine

        return ProcessEngine(cfg, run)
    if cfg.inference.backend != "hf" and cfg.structured.enabled:
        raise ToolR0Error(
            f"structured decoding of candidates is wired for the hf backend only (inference.backend="
            f"{cfg.inference.backend}); set structured.enabled: false"
        )
    return RoleEngine(cfg, run)
