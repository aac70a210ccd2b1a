"""The models behind the self-play loop: which weights play which role, and how they are sampled/trained.

`RoleEngine` (default, hf backend) keeps ONE `RoleModels` in memory (H5's layout: a frozen base with a LoRA
adapter per role, or full models, or the shared-weights ablation) and reuses it across stages and
iterations: the Generator samples candidates through its adapter, the frozen Solver cross-verifies and
labels through its adapter (S_{t-1}: phase C of this iteration has not run yet), and training updates the
role's adapter in place (then saves it). After a resume the adapters are reloaded from the run's
checkpoints, so the in-memory state always equals the recorded checkpoints.

Other backends (vllm/openai) sample through a fresh sampler per checkpoint; training still goes through
`toolr0.training.run` (TRL). With `server.managed` (openai backend) the engine runs the server itself
(`inference.server.ManagedServer`): phase A's curriculum reward and judge query a server serving the frozen
Solver, stage B samples through a server serving the checkpoint it needs (restarted when that changes, so
every iteration serves the new Solver), and the server is stopped before Solver training and at the end.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from toolr0.config import ToolR0Config
from toolr0.core.solver_format import SolverFormat
from toolr0.errors import ToolR0Error
from toolr0.selfplay.rundir import RunDir

log = logging.getLogger(__name__)

STOP_TASK = ("</tool_call_answer>",)


class SolverOps:
    """The loop's view of the frozen Solver: the loop config's k / τ / temperatures applied to H3's service."""

    def __init__(self, service: Any, cfg: ToolR0Config):
        self.service = service
        self.cfg = cfg

    def cross_verify(self, tasks: list[dict[str, Any]], seed: int) -> list[tuple[float, dict[str, Any]]]:
        lp = self.cfg.loop
        res = self.service.cross_verify(
            tasks,
            mode=lp.cross_verify_mode,
            k=lp.k_verify,
            tau=lp.tau,
            seed=seed,
            temperature=lp.verify_temperature,
            top_p=lp.verify_top_p,
            max_new_tokens=lp.verify_max_tokens,
        )
        return [(float(r.agreement), {k: v for k, v in r.extra.items() if k != "kept"}) for r in res]

    def pass_rates(self, tasks: list[dict[str, Any]], seed: int) -> list[tuple[float, int]]:
        res = self.service.pass_rates_detailed(tasks, K=self.cfg.loop.k_passk, seed=seed)
        return [(float(r.p_hat), int(r.successes)) for r in res]

    def judge_labels(self, tasks: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
        return self.service.judge_labels(tasks)


class _Generator:
    """Samples one completion per Generator prompt (structured decoding when enabled)."""

    def __init__(self, sampler: Any, adapter: str | None, cfg: ToolR0Config):
        self.sampler, self.adapter, self.cfg = sampler, adapter, cfg

    def generate(self, messages: list[list[dict[str, str]]], specs: list[Any], seed: int) -> list[str]:
        from toolr0.inference.base import SamplingParams

        lp = self.cfg.loop
        params = SamplingParams(
            n=1,
            temperature=lp.gen_temperature,
            top_p=lp.gen_top_p,
            max_new_tokens=lp.gen_max_tokens,
            stop=STOP_TASK,
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


def _reward_means(history: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over the logged steps of the total reward and each reward function (TRL log keys)."""
    sums: dict[str, list[float]] = {}
    for row in history:
        for k, v in row.items():
            if not isinstance(v, int | float):
                continue
            if k == "reward":
                sums.setdefault("total", []).append(float(v))
            elif k.startswith("rewards/") and k.endswith("/mean"):
                sums.setdefault(k[len("rewards/") : -len("/mean")], []).append(float(v))
    return {k: sum(v) / len(v) for k, v in sums.items() if v}


def _train_result(res: Any) -> dict[str, Any]:
    hist = [dict(r) for r in (res.log_history or []) if "train_runtime" not in r]
    return {
        "checkpoint": res.final_dir,
        "steps": res.global_step,
        "start_step": res.start_step,
        "resumed_from": res.resumed_from,
        "seconds": round(res.seconds, 2),
        "seconds_per_step": res.seconds_per_step,
        "peak_rss_gb": round(res.peak_rss_gb, 2),
        "precision": res.precision,
        "reward_means": _reward_means(hist),
        "log_history": hist,
    }


def _progress_callback(reporter: Any, role: str) -> Any:
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


class RoleEngine:
    """Both roles on one in-memory `RoleModels` (see module docstring)."""

    def __init__(self, cfg: ToolR0Config, run: RunDir):
        self.cfg = cfg
        self.run = run
        self.models: Any = None
        self.loaded: dict[str, str | None] = {}
        self._services: dict[tuple[str | None, int], Any] = {}
        self._sampler: Any = None
        self._external: tuple[Any, Any, str | None] | None = None
        self._training = False
        self._server: Any = None  # the managed server (server.managed), serving checkpoint `_served`
        self._served: str | None = None

    # ------------------------------------------------------------------ weights
    @property
    def shared(self) -> bool:
        return self.cfg.roles.mode == "shared"

    def _slot(self, role: str) -> str:
        return "shared" if self.shared else role

    def ensure(self, **want: str | None) -> Any:
        """Make the in-memory role weights equal the given checkpoints (None = π₀), loading what differs."""
        from toolr0.training.roles import load_role_models

        slots = {self._slot(r): ck for r, ck in want.items()}
        if self.cfg.inference.backend != "hf" and not self._training:
            self.loaded.update(slots)  # sampled by the external backend from the checkpoint itself
            return None
        if self.models is None:
            init = {"generator": slots.get("shared", slots.get("generator")), "solver": slots.get("solver")}
            if self.shared:
                init = {"generator": slots.get("shared")}
            self.models = load_role_models(self.cfg.model, self.cfg.roles, init=init)
            self.loaded = {"shared": init["generator"]} if self.shared else dict(init)
            self._sampler = None
            return self.models
        for slot, ck in slots.items():
            if self.loaded.get(slot, "<unset>") != ck:
                self._reload(slot, ck)
        return self.models

    def _reload(self, slot: str, ck: str | None) -> None:
        """Swap one role's weights for checkpoint `ck` (LoRA: adapter reload; full: model reload)."""
        rm = self.models
        role = "generator" if slot in ("generator", "shared") else "solver"
        if rm.peft_model is not None:
            name = rm.adapter_name(role)
            pm = rm.peft_model
            other = next(n for n in pm.peft_config if n != name) if len(pm.peft_config) > 1 else None
            if other is not None:
                pm.set_adapter(other)
            pm.delete_adapter(name)
            if ck:
                pm.load_adapter(str(ck), adapter_name=name, is_trainable=True)
            else:
                from toolr0.training.roles import _lora_config

                pm.add_adapter(name, _lora_config(self.cfg.roles))
                _zero_lora_b(pm, name)
            pm.set_adapter(name)
        else:
            from toolr0.inference.models import load_model

            key = "shared" if self.shared else role
            model, _ = load_model(
                str(ck or self.cfg.model.name),
                dtype="fp32",
                threads=self.cfg.model.threads,
                device=self.cfg.model.device,
            )
            model.train()
            for p in model.parameters():
                p.requires_grad_(True)
            rm.full_models[key] = model
            self._sampler = None
        self.loaded[slot] = ck
        self._services.clear()

    def _hf_sampler(self, model: Any) -> Any:
        from toolr0.inference.hf import HFSampler

        inf = self.cfg.inference
        return HFSampler(
            model,
            self.models.tokenizer,
            batch_size=inf.batch_size,
            max_batch_sequences=inf.max_batch_sequences,
            sort_by_length=inf.sort_by_length,
            checkpoint_id="selfplay",
        )

    def _external_sampler(self, role: str) -> tuple[Any, str | None]:
        """vllm/openai backends: a sampler over the role's current checkpoint (untested here: no GPU/vLLM).

        The trained weights are freed first (on one GPU, TRL's models and a vLLM engine do not fit together);
        `ensure` reloads them for the next training phase.
        """
        slot = self._slot(role)
        ck = self.loaded.get(slot)
        key = (self.cfg.inference.backend, slot, ck)
        if self._external is not None and self._external[0] == key:
            return self._external[1], self._external[2]
        self._external = None
        self._free_training_models()
        inf, mode = self.cfg.inference, self.cfg.roles.mode
        adapter = None
        if inf.backend == "openai" and self.cfg.server.managed:
            sampler = self.serve(ck).sampler(timeout_s=inf.timeout_s)
        elif inf.backend == "openai":
            from toolr0.inference.openai_backend import OpenAISampler

            sampler = OpenAISampler.from_config(inf)
            adapter = ck and Path(ck).name  # the server must serve this checkpoint under that name
        else:
            from toolr0.inference.vllm_backend import VLLMSampler

            lora = mode == "lora" or (mode == "shared" and self.cfg.roles.shared_use_lora)
            name = str(ck) if (ck and not lora) else self.cfg.model.name
            sampler = VLLMSampler.from_config(self.cfg.model.model_copy(update={"name": name}), inf)
            if lora and ck:
                sampler.add_adapter(slot, str(ck))
                adapter = slot
        self._external = (key, sampler, adapter)
        return sampler, adapter

    # ------------------------------------------------------------------ managed server
    def serve(self, checkpoint: str | None) -> Any:
        """The managed server serving `checkpoint` (None: the base model); restarted when it changes."""
        from toolr0.inference.models import resolve_model
        from toolr0.inference.server import ManagedServer

        if self._server is not None and self._served == checkpoint and self._server.running:
            return self._server
        self.stop_server()
        base = str(resolve_model(self.cfg.model.name))
        server = ManagedServer.for_checkpoint(self.cfg.server, base, checkpoint, self.run.root / "server.log")
        self._server, self._served = server.start(), checkpoint
        self.run.log_metric(
            {
                "event": "server_start",
                "checkpoint": checkpoint,
                "url": server.base_url,
                "command": server.describe(),
            }
        )
        return server

    def stop_server(self) -> None:
        server, self._server, self._served = self._server, None, None
        self._external = None  # its sampler pointed at the stopped server
        if server is not None:
            rc = server.stop()
            self.run.log_metric({"event": "server_stop", "returncode": rc})

    def _free_training_models(self) -> None:
        if self.models is None:
            return
        self.models = None
        self._sampler = None
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def _role_sampler(self, role: str) -> tuple[Any, str | None]:
        if self.cfg.inference.backend != "hf":
            return self._external_sampler(role)
        rm = self.models
        if rm.peft_model is not None:
            if self._sampler is None:
                self._sampler = self._hf_sampler(rm.peft_model)
            return self._sampler, rm.adapter_name(role)
        key = "shared" if self.shared else role
        return self._hf_sampler(rm.full_models[key]), None

    # ------------------------------------------------------------------ loop interface
    def begin_iteration(self, t: int) -> None:
        """New iteration: the Solver changed, so every Solver cache is dropped (spec §10.10)."""
        for s in self._services.values():
            s.service.clear()
        self._services.clear()

    def generator(self, checkpoint: str | None, t: int) -> _Generator:
        self.ensure(generator=checkpoint)
        sampler, adapter = self._role_sampler("generator")
        return _Generator(sampler, adapter, self.cfg)

    def solver(self, checkpoint: str | None, t: int) -> SolverOps:
        """The frozen Solver at `checkpoint` for cross-verification and difficulty (cache scoped to t)."""
        key = (checkpoint, t)
        if key not in self._services:
            if self.shared:
                self.ensure(generator=checkpoint)
            else:
                self.ensure(solver=checkpoint)
            from toolr0.inference.solver_service import SolverService

            sampler, adapter = self._role_sampler("solver")
            rewards = self.cfg.rewards.model_copy(
                update={"solver_temperature": self.cfg.loop.passk_temperature, "K": self.cfg.loop.k_passk}
            )
            service = SolverService(
                sampler,
                rewards,
                checkpoint_id=f"solver:{checkpoint or 'base'}",
                seed=self.cfg.loop.seed,
                adapter=adapter,
                prompt_variant=self.cfg.prompts.solver_variant,
                solver_format=SolverFormat.from_config(self.cfg.prompts),
                max_new_tokens=self.cfg.loop.passk_max_tokens,
            )
            self._services[key] = SolverOps(service, self.cfg)
        return self._services[key]

    def _frozen_service(self) -> Any:
        """In-process frozen Solver for the Generator's r_curr (after the shared-mode snapshot is taken)."""
        from toolr0.inference.solver_service import SolverService

        rm = self.models
        model = rm.frozen_solver_model()
        sampler = (
            self._sampler
            if (rm.peft_model is not None and self._sampler is not None)
            else self._hf_sampler(model)
        )
        return SolverService(
            sampler,
            self.cfg.rewards,
            checkpoint_id=f"frozen-solver:{rm.frozen_solver_adapter() or 'full'}",
            seed=self.cfg.loop.seed,
            adapter=rm.frozen_solver_adapter(),
            prompt_variant=self.cfg.prompts.solver_variant,
                solver_format=SolverFormat.from_config(self.cfg.prompts),
        )

    def _served_frozen_service(self, frozen_solver: str | None) -> Any:
        """Phase A's frozen Solver behind the managed server (health-checked before training starts)."""
        from toolr0.inference.solver_service import SolverService

        sampler = self.serve(frozen_solver).sampler(timeout_s=self.cfg.inference.timeout_s)
        sampler.health_check()
        return SolverService(
            sampler,
            self.cfg.rewards,
            checkpoint_id=f"served-solver:{frozen_solver or 'base'}",
            seed=self.cfg.loop.seed,
            prompt_variant=self.cfg.prompts.solver_variant,
            solver_format=SolverFormat.from_config(self.cfg.prompts),
        )

    def train_generator(
        self, *, iteration: int, init: str | None, frozen_solver: str | None, out_dir: Path, reporter: Any
    ) -> dict[str, Any]:
        from toolr0.selfplay.stages import derive_seed
        from toolr0.training.run import train_generator

        self._begin_training(keep_server=True)
        if self.shared:
            self.ensure(generator=init)
        else:
            self.ensure(generator=init, solver=frozen_solver)
        self.models.snapshot_for_frozen_solver()  # shared ablation: S = snapshot at phase start (no-op otherwise)
        service = self._served_frozen_service(frozen_solver) if self.cfg.server.managed else None
        service = service or self._frozen_service()
        try:
            res = train_generator(
                self.cfg,
                out_dir,
                models=self.models,
                service=service,
                resume=True,
                spec_seed=derive_seed(self.cfg.loop.seed, iteration, "generator_prompts"),
                callbacks=[_progress_callback(reporter, "generator")],
                echo=reporter.note,
            )
        finally:
            self._training = False
            self.stop_server()  # phase A is over; the next phase serves (or trains) other weights
        service.clear()
        self.loaded[self._slot("generator")] = res.final_dir
        self._services.clear()
        return _train_result(res)

    def train_solver(
        self, *, iteration: int, init: str | None, curriculum: Path, out_dir: Path, reporter: Any
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
            self._training = False
        self.loaded[self._slot("solver")] = res.final_dir
        self._services.clear()
        return _train_result(res)

    def _begin_training(self, keep_server: bool = False) -> None:
        self._training = True
        if not keep_server:
            self.stop_server()  # training needs the GPUs the server holds
        if self._external is not None:  # free the inference engine before loading trainable weights
            self._external = None
            self._services.clear()
            import gc

            gc.collect()

    def close(self) -> None:
        self.stop_server()
        self._external = None
        self._services.clear()
        self._sampler = None
        self.models = None


def _zero_lora_b(pm: Any, name: str) -> None:
    """A fresh adapter equals π₀ (PEFT zero-initialises B; made explicit so it holds for any init option)."""
    for n, p in pm.named_parameters():
        if f".{name}." in n and "lora_B" in n:
            p.data.zero_()


def build_engine(cfg: ToolR0Config, run: RunDir, in_process: bool = False) -> Any:
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
