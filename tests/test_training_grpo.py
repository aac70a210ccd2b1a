"""Real GRPO steps (TRL GRPOTrainer, tiny random model, CPU) for each role with the real reward functions:
the trained role's parameters move, the other role's do not, every reward is logged, resume works."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from _training_support import (  # noqa: E402
    GENERATOR_CHOICES,
    SHORT_SOLVER_CHOICES,
    SOLVER_CHOICES,
    choice_factory,
    small_cfg,
    weather_tasks,
)
from toolr0.errors import ConfigError  # noqa: E402
from toolr0.training import checkpoint as ckpt  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tiny model gains nothing from threads; on a shared 2-core box a second OpenMP thread mostly
    spin-waits (measured: 11 s vs 65 s for the Solver test under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fresh_roles(cfg):
    from toolr0.inference.models import tiny_random_model
    from toolr0.training.roles import wrap_roles

    model, tok = tiny_random_model(seed=0)
    return wrap_roles(model, tok, cfg.roles, seed=0)


def _recording_first_reward(factory, seen):
    """Wrap a reward-functions factory so its first function (name kept) also records each completion's text."""
    from toolr0.training import reward_funcs as rf

    def recording(*a, **k):
        funcs = factory(*a, **k)
        first = funcs[0]

        def recorded(completions, **kw):
            seen.extend(rf.completion_text(c) for c in completions)
            return first(completions, **kw)

        recorded.__name__ = first.__name__
        return [recorded, *funcs[1:]]

    return recording


def _solver_run(cfg, rm, out):
    """`cfg`'s Solver GRPO run on the roles `rm`: weather tasks, replies chosen from SOLVER_CHOICES."""
    from toolr0.training.run import train_solver

    return train_solver(
        cfg,
        weather_tasks(),
        out,
        models=rm,
        logits_processor_factory=choice_factory(rm.tokenizer, SOLVER_CHOICES),
    )


def _changed(before, after):
    import torch

    return sum(not torch.equal(before[k], after[k]) for k in before)


def _all_b_changed(before, after):
    """Every LoRA B matrix moved (B starts at 0 and is the first to get a gradient)."""
    import torch

    keys = [k for k in before if ".lora_B." in k]
    return bool(keys) and all(not torch.equal(before[k], after[k]) for k in keys)


def test_solver_grpo_moves_only_solver_adapter(tmp_path):
    cfg = small_cfg()
    rm = _fresh_roles(cfg)
    g0, s0 = rm.role_state("generator"), rm.role_state("solver")
    res = _solver_run(cfg, rm, tmp_path / "solver")
    assert res.global_step == 2
    assert _changed(g0, rm.role_state("generator")) == 0
    assert _all_b_changed(s0, rm.role_state("solver"))
    logs = [h for h in res.log_history if "reward" in h]
    assert len(logs) == 2
    for h in logs:  # each reward function logged separately, plus our extra metrics
        assert {"rewards/solver_format/mean", "rewards/solver_accuracy/mean", "solver/exact_rate"} <= set(h)
    assert any(h["reward_std"] > 0 for h in logs)  # real rewards gave a real signal
    assert max(h["rewards/solver_accuracy/mean"] for h in logs) > 0
    # run folder: metrics, resolved config, complete checkpoint, final adapter folder
    out = tmp_path / "solver"
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "reward" in r] == [1, 2]
    resolved = json.loads((out / "resolved.json").read_text())
    assert resolved["grpo_config"]["loss_type"] == "grpo"
    assert resolved["reward_functions"] == ["solver_format", "solver_accuracy"]
    assert (resolved["processes"], resolved["device"], resolved["distributed_type"]) == (1, "cpu", "NO")
    assert ckpt.is_complete(out / "checkpoints" / "checkpoint-2")
    assert (out / "final" / "adapter_config.json").is_file()
    assert (out / "final" / "adapter_model.safetensors").is_file()


def test_kl_anchor_on_two_adapters_takes_the_base_as_reference(tmp_path):
    """β > 0 with the generator and solver adapters on one base: the reference is the base with every adapter
    off (TRL's PEFT path would copy an adapter named "default", which this layout lacks). The generator adapter
    is made non-trivial and the solver adapter starts at B = 0, so the KL is 0 at step 1 only if neither adapter
    is in the reference, and above 0 once the solver adapter has moved."""
    import torch

    cfg = small_cfg(sol={"beta": 0.5})
    rm = _fresh_roles(cfg)
    with torch.no_grad():
        for n, p in rm.peft_model.named_parameters():
            if ".generator." in n and "lora_B" in n:
                p.fill_(0.05)
    g0 = rm.role_state("generator")
    res = _solver_run(cfg, rm, tmp_path / "solver")
    kl = [h["kl"] for h in res.log_history if "kl" in h]
    assert len(kl) == 2
    assert kl[0] == pytest.approx(0.0, abs=1e-6) and kl[1] > 1e-6
    assert _changed(g0, rm.role_state("generator")) == 0
    resolved = json.loads((tmp_path / "solver" / "resolved.json").read_text())
    assert resolved["grpo_config"]["beta"] == 0.5


class RecordingService:
    """Wraps the real SolverService and records the model state seen at each (batched) call."""

    def __init__(self, inner, models):
        self.inner, self.models, self.calls = inner, models, []

    def _record(self, kind, tasks):
        pm = self.models.peft_model
        trainable = {n.split(".")[-2] for n, p in pm.named_parameters() if p.requires_grad and "lora_" in n}
        self.calls.append((kind, len(tasks), pm.active_adapter, trainable, pm.training))

    def pass_rates(self, tasks):
        self._record("pass_rates", tasks)
        return self.inner.pass_rates(tasks)

    def judge(self, tasks):
        self._record("judge", tasks)
        return self.inner.judge(tasks)


def test_generator_grpo_with_frozen_solver_service(tmp_path):
    from toolr0.training.frozen import _default_service
    from toolr0.training.run import train_generator

    cfg = small_cfg()
    rm = _fresh_roles(cfg)
    g0, s0 = rm.role_state("generator"), rm.role_state("solver")
    service = RecordingService(_default_service(cfg, rm), rm)
    res = train_generator(
        cfg,
        tmp_path / "gen",
        models=rm,
        service=service,
        logits_processor_factory=choice_factory(rm.tokenizer, GENERATOR_CHOICES),
    )
    assert res.global_step == 2
    assert _changed(s0, rm.role_state("solver")) == 0
    assert _all_b_changed(g0, rm.role_state("generator"))
    # one batched call per generation round for each service method, on the solver adapter, in eval mode
    assert service.calls, "the curriculum reward never queried the frozen Solver"
    kinds = [c[0] for c in service.calls]
    assert kinds.count("pass_rates") == kinds.count("judge") <= 2
    for _kind, n, active, _trainable, training in service.calls:
        assert n >= 1 and active == "solver" and not training
    # after training the generator adapter is the active, only trainable one again
    assert rm.peft_model.active_adapter == "generator"
    logs = [h for h in res.log_history if "reward" in h]
    for h in logs:
        for name in ("generator_format", "generator_validity", "generator_curriculum"):
            assert f"rewards/{name}/mean" in h
        assert "generator/gate_rate" in h and "generator/tasks_scored_rate" in h
    assert any(h["reward_std"] > 0 for h in logs)
    assert max(h["rewards/generator_curriculum/mean"] for h in logs) > 0  # judge fallback 3 → r_sem 0.5


class _Interrupt(Exception):
    pass


def _interrupt_at(step):
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise _Interrupt()

    return Kill()


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    from toolr0.training.run import train_solver

    cfg = small_cfg(sol={"max_steps": 2, "save_steps": 1, "max_completion_length": 40})
    choices = SHORT_SOLVER_CHOICES

    ref = _fresh_roles(cfg)
    initial = ref.role_state("solver")
    train_solver(
        cfg,
        weather_tasks(),
        tmp_path / "ref",
        models=ref,
        logits_processor_factory=choice_factory(ref.tokenizer, choices),
    )
    want = ref.role_state("solver")
    assert _all_b_changed(initial, want)  # the comparison below is not trivially true

    first = _fresh_roles(cfg)
    with pytest.raises(_Interrupt):
        train_solver(
            cfg,
            weather_tasks(),
            tmp_path / "run",
            models=first,
            callbacks=[_interrupt_at(2)],
            logits_processor_factory=choice_factory(first.tokenizer, choices),
        )
    ckdir = tmp_path / "run" / "checkpoints"
    assert [c.name for c in ckpt.list_checkpoints(ckdir)] == ["checkpoint-1"]  # step 2 is lost, as designed
    torn = ckdir / "checkpoint-2"  # a save killed half-way must never be picked
    torn.mkdir()
    (torn / "optimizer.pt").write_bytes(b"\x00" * 10)
    (torn / "trainer_state.json").write_text('{"global_step": 2, "log_hist')

    with pytest.raises(ConfigError, match="--resume"):
        train_solver(cfg, weather_tasks(), tmp_path / "run", models=_fresh_roles(cfg))

    second = _fresh_roles(cfg)  # a new process: fresh weights, everything else from the checkpoint
    res = train_solver(
        cfg,
        weather_tasks(),
        tmp_path / "run",
        models=second,
        resume=True,
        logits_processor_factory=choice_factory(second.tokenizer, choices),
    )
    assert res.resumed_from.endswith("checkpoint-1") and res.start_step == 1 and res.global_step == 2
    assert ckpt.is_complete(torn)  # the torn folder was removed, then step 2 was saved properly
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "reward" in r] == [1, 2]  # step 2 ran (and logged) once, after resume
    got = second.role_state("solver")
    import torch

    # same data order, sampling RNG, optimizer and schedule: the resumed run ends where the uninterrupted one does
    for k in want:
        assert torch.allclose(want[k], got[k], atol=1e-6), k


def test_structured_decoding_hook_reaches_trl_generation(tmp_path, monkeypatch):
    pytest.importorskip("xgrammar")
    from toolr0.training import reward_funcs as rf
    from toolr0.training.run import train_generator

    seen = []
    monkeypatch.setattr(
        rf, "generator_reward_funcs", _recording_first_reward(rf.generator_reward_funcs, seen)
    )
    cfg = small_cfg(gen={"max_steps": 1, "max_completion_length": 48}, structured={"enabled": True})
    rm = _fresh_roles(cfg)
    res = train_generator(cfg, tmp_path / "gen", models=rm)
    assert res.global_step == 1 and len(seen) == 4
    assert all(t.startswith("<think>") for t in seen)  # the xgrammar task grammar shaped every rollout


def _one_solver_step(cfg, out):
    """The adapter state after `cfg`'s Solver GRPO run on fresh tiny roles (weather tasks, fixed choices)."""
    rm = _fresh_roles(cfg)
    _solver_run(cfg, rm, out)
    return rm.role_state("solver")


def test_rollouts_drop_finished_rows_with_the_same_tokens(tmp_path, monkeypatch):
    """Speed change only: TRL's transformers rollout goes through our decode loop, which drops finished rows;
    under one seed the rollouts (and so the rewards and the update) equal those of `model.generate()`."""
    from toolr0.training import grpo
    from toolr0.training import reward_funcs as rf

    real_class = grpo._trainer_class
    seen: list[str] = []
    calls: list[int] = []

    def run(drop: bool) -> tuple[list[str], dict]:
        seen.clear()
        cls = real_class()
        cls.drop_finished_rows = drop
        monkeypatch.setattr(grpo, "_trainer_class", lambda: cls)
        if drop:  # count the decode loop's use (it runs instead of model.generate)
            from toolr0.inference import decode as dec

            real_decode = dec.decode
            monkeypatch.setattr(dec, "decode", lambda *a, **k: calls.append(1) or real_decode(*a, **k))
        state = _one_solver_step(small_cfg(sol={"max_steps": 1}), tmp_path / f"solver-{drop}")
        return list(seen), state

    monkeypatch.setattr(rf, "solver_reward_funcs", _recording_first_reward(rf.solver_reward_funcs, seen))
    dropped, state_on = run(True)
    plain, state_off = run(False)
    assert calls and len(dropped) == 4
    assert dropped == plain
    assert len({len(t) for t in dropped}) > 1  # rows ended at different steps, so some were dropped
    import torch

    assert all(torch.equal(state_on[k], state_off[k]) for k in state_on)


def test_activation_checkpointing_off_gives_the_same_update(tmp_path, monkeypatch):
    """Activation checkpointing is a memory/compute trade only (kept on in the presets: without it the cpu preset's
    micro-batch needs > 16 GB, bench/RESULTS.md): one Solver GRPO step with and without it leaves the same adapter
    weights under one seed."""
    import torch
    import transformers.modeling_utils as mu

    real, recomputed = mu.checkpoint, []
    monkeypatch.setattr(mu, "checkpoint", lambda *a, **k: recomputed.append(1) or real(*a, **k))
    states, counts = [], []
    for checkpointing in (True, False):
        recomputed.clear()
        cfg = small_cfg(sol={"max_steps": 1, "gradient_checkpointing": checkpointing})
        states.append(_one_solver_step(cfg, tmp_path / f"solver-{checkpointing}"))
        counts.append(len(recomputed))
    assert counts[0] > 0 and counts[1] == 0  # the switch really turned checkpointed layers on and off
    before = _fresh_roles(small_cfg()).role_state("solver")
    assert any(not torch.equal(states[0][k], before[k]) for k in before)  # the step moved the adapter
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_shared_prompt_forward_gives_the_same_update(tmp_path, monkeypatch):
    """Speed change only: the loss forward packs each prompt's completions behind one copy of the prompt
    (training/shared_prompt.py); one Solver GRPO step leaves the same adapter weights as TRL's one row per
    completion, up to float rounding, and the packed path really ran."""
    import torch

    from toolr0.training import grpo
    from toolr0.training import shared_prompt as sp

    real_class, real_logps, packed_calls = grpo._trainer_class, sp.shared_prompt_logps, []

    def recording(*a, **k):
        out = real_logps(*a, **k)
        packed_calls.append(out is not None)
        return out

    monkeypatch.setattr(sp, "shared_prompt_logps", recording)
    states = []
    for share in (True, False):
        cls = real_class()
        cls.share_prompt_forward = share
        monkeypatch.setattr(grpo, "_trainer_class", lambda cls=cls: cls)
        states.append(_one_solver_step(small_cfg(sol={"max_steps": 1}), tmp_path / f"solver-{share}"))
        if share:
            assert packed_calls and all(packed_calls)  # the packed forward computed the loss
    before = _fresh_roles(small_cfg()).role_state("solver")
    assert any(not torch.equal(states[0][k], before[k]) for k in before)  # the step moved the adapter
    for k in states[0]:
        assert torch.allclose(states[0][k], states[1][k], atol=1e-6, rtol=1e-4), k


def test_rollouts_prefill_each_prompt_once_with_the_same_tokens(tmp_path, monkeypatch):
    """Speed change only: TRL's rollout repeats each prompt G times; its KV cache is prefilled once per distinct
    prompt and repeated (inference/decode.py `prefill_repeated`). Under one seed the rollouts and the update
    equal those of prefilling every row."""
    import torch

    from toolr0.inference import decode as dec
    from toolr0.training import grpo
    from toolr0.training import reward_funcs as rf

    real_class, real_prefill = grpo._trainer_class, dec.prefill_repeated
    seen: list[str] = []
    prefilled: list[bool] = []

    def recording(*a, **k):
        cache = real_prefill(*a, **k)
        prefilled.append(cache is not None)
        return cache

    monkeypatch.setattr(dec, "prefill_repeated", recording)
    monkeypatch.setattr(rf, "solver_reward_funcs", _recording_first_reward(rf.solver_reward_funcs, seen))
    runs = []
    for share in (True, False):
        seen.clear()
        cls = real_class()
        cls.share_prompt_prefill = share
        monkeypatch.setattr(grpo, "_trainer_class", lambda cls=cls: cls)
        state = _one_solver_step(small_cfg(sol={"max_steps": 1}), tmp_path / f"solver-{share}")
        runs.append((list(seen), state))
        if share:
            assert prefilled and all(prefilled)  # the rollout's prompts were prefilled once each
    (texts_on, state_on), (texts_off, state_off) = runs
    assert len(texts_on) == 4 and texts_on == texts_off
    assert all(torch.equal(state_on[k], state_off[k]) for k in state_on)


def test_repeat_factor_finds_runs_of_identical_rows():
    import torch

    from toolr0.inference.decode import repeat_factor

    a, b = [0, 1, 2], [0, 3, 4]
    ids = torch.tensor([a, a, b, b])
    mask = torch.ones_like(ids)
    assert repeat_factor(ids, mask) == 2
    assert repeat_factor(torch.tensor([a, b, a, b]), mask) == 1  # not consecutive
    assert repeat_factor(torch.tensor([a, a, a, a]), mask) == 4
    mask2 = mask.clone()
    mask2[1, 0] = 0
    assert repeat_factor(ids, mask2) == 1  # same ids, another mask: not the same prompt


def test_native_solver_replies_cut_at_the_limit_earn_nothing(tmp_path):
    """run.py hands the Solver rewards the completion limit and the tokenizer's end ids, and TRL's
    `completion_ids` tell which replies were cut: with a 1-token limit every reply is cut (format 0), with
    room for the forced choices and their end-of-turn none is."""
    last = {}
    for limit in (1, 120):
        cfg = small_cfg(
            sol={"max_steps": 1, "max_completion_length": limit}, prompts={"solver_format": "native"}
        )
        _one_solver_step(cfg, tmp_path / f"limit-{limit}")
        rows = (tmp_path / f"limit-{limit}" / "metrics.jsonl").read_text().splitlines()
        last[limit] = [json.loads(r) for r in rows if "solver/cut_rate" in r][-1]
    assert last[1]["solver/cut_rate"] == 1.0 and last[1]["rewards/solver_format/mean"] == 0.0
    assert last[120]["solver/cut_rate"] == 0.0 and last[120]["rewards/solver_format/mean"] > 0.0


def test_frozen_solver_samples_from_a_merged_copy_when_asked():
    """`inference.merge_lora` reaches phase A's in-process frozen Solver (the solver adapter of the shared base)."""
    from toolr0.training.frozen import _default_service

    cfg = small_cfg()
    assert not _default_service(cfg, _fresh_roles(cfg)).sampler.merge_lora
    cfg.inference.merge_lora = True
    service = _default_service(cfg, _fresh_roles(cfg))
    assert service.sampler.merge_lora and service.adapter == "solver"
