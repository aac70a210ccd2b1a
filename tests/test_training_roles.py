"""Parameter layout per role: two LoRA adapters on one frozen base, full copies, the shared-weights ablation;
the frozen-Solver scope; atomic per-role export and reload."""

from __future__ import annotations

import pytest

pytest.importorskip("peft")

import torch  # noqa: E402

from toolr0.inference.config import ModelConfig  # noqa: E402
from toolr0.training.config import RolesConfig  # noqa: E402
from toolr0.training.frozen import frozen_scope  # noqa: E402
from toolr0.training.roles import SNAPSHOT_ADAPTER, load_role_models, wrap_roles  # noqa: E402

RC = RolesConfig(lora_r=4, lora_alpha=8)


def _tiny():
    from toolr0.inference.models import tiny_random_model

    return tiny_random_model(seed=0)


def _trainable(pm):
    return {n for n, p in pm.named_parameters() if p.requires_grad}


def test_lora_two_adapters_one_frozen_base():
    rm = wrap_roles(*_tiny(), RC)
    pm = rm.peft_model
    assert set(pm.peft_config) == {"generator", "solver"}
    for role in ("generator", "solver"):
        assert rm.model_for(role) is pm and pm.active_adapter == role
        names = _trainable(pm)
        assert names and all(f".{role}." in n and "lora_" in n for n in names)
    assert rm.role_state("generator").keys().isdisjoint(rm.role_state("solver").keys())


def test_frozen_scope_switches_to_solver_and_restores_everything():
    rm = wrap_roles(*_tiny(), RC)
    pm = rm.model_for("generator")
    pm.train()
    before = _trainable(pm)
    with frozen_scope(rm) as (model, adapter):
        assert adapter == "solver" and pm.active_adapter == "solver" and not pm.training
        pm.set_adapter("solver")  # whatever the sampler does inside...
        pm.train()
    assert pm.active_adapter == "generator" and pm.training and _trainable(pm) == before


def test_frozen_solver_differs_from_generator_adapter():
    rm = wrap_roles(*_tiny(), RC)
    with torch.no_grad():  # make the generator adapter non-trivial
        for n, p in rm.peft_model.named_parameters():
            if ".generator." in n and "lora_B" in n:
                p.fill_(0.05)
    ids = torch.tensor([[1, 2, 3, 4]])
    pm = rm.model_for("generator")
    with torch.no_grad():
        gen_logits = pm(input_ids=ids).logits
        with frozen_scope(rm) as (model, adapter):
            solver_logits = model(input_ids=ids).logits
        with pm.disable_adapter():
            base_logits = pm(input_ids=ids).logits
    assert not torch.allclose(gen_logits, solver_logits)
    assert torch.allclose(solver_logits, base_logits)  # fresh solver adapter = π₀: generator NOT active


def test_save_role_writes_a_loadable_adapter_folder(tmp_path, tiny_model_dir):
    mc = ModelConfig(name=str(tiny_model_dir), dtype="fp32")
    rm = load_role_models(mc, RC)
    with torch.no_grad():
        for n, p in rm.peft_model.named_parameters():
            if ".solver." in n and "lora_B" in n:
                p.fill_(0.01)
    dest = rm.save_role("solver", tmp_path / "solver_final")
    assert (dest / "adapter_config.json").is_file() and (dest / "adapter_model.safetensors").is_file()
    assert not list(tmp_path.glob(".solver_final*"))  # no temp folder left behind
    rm.save_role("solver", dest)  # overwrite in place, atomically
    again = load_role_models(mc, RC, init={"solver": str(dest)})
    want = rm.role_state("solver")
    got = again.role_state("solver")
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    g = again.role_state("generator")
    assert all(torch.count_nonzero(v) == 0 for k, v in g.items() if "lora_B" in k)  # fresh generator


def test_shared_mode_one_adapter_and_phase_snapshot():
    rm = wrap_roles(*_tiny(), RolesConfig(mode="shared", lora_r=4, lora_alpha=8))
    pm = rm.peft_model
    assert set(pm.peft_config) == {"shared"}
    assert rm.model_for("generator") is rm.model_for("solver")
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if ".shared." in n and "lora_B" in n:
                p.fill_(0.02)
    rm.snapshot_for_frozen_solver()
    assert rm.frozen_solver_adapter() == SNAPSHOT_ADAPTER
    assert all(".shared." in n for n in _trainable(pm))  # the snapshot is frozen
    snap = {n: p.clone() for n, p in pm.named_parameters() if f".{SNAPSHOT_ADAPTER}." in n}
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if ".shared." in n and "lora_B" in n:
                p.add_(1.0)  # training moves the shared weights...
    assert all(torch.equal(snap[n], p) for n, p in pm.named_parameters() if n in snap)  # ...not the snapshot


def test_full_mode_separate_models():
    rm = wrap_roles(*_tiny(), RolesConfig(mode="full"))
    g, s = rm.model_for("generator"), rm.model_for("solver")
    assert g is not s and rm.peft_model is None
    with torch.no_grad():
        next(g.parameters()).add_(1.0)
    assert not torch.equal(next(g.parameters()), next(s.parameters()))
