"""Multi-process set-ups decided or refused before any model loads (issue 29): DeepSpeed with weights-only
checkpoints, ZeRO-3/FSDP with an in-process Solver on the trained weights, the GRPOConfig (ZeRO-3 init) built
before the models, phase C loading no Generator, and a multi-rank checkpoint vouched for by its marker only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolr0.config import config_from_dict, load_config
from toolr0.errors import ConfigError
from toolr0.training import checkpoint as ckpt
from toolr0.training import preflight

ROOT = Path(__file__).resolve().parents[1]
ZERO3 = str(ROOT / "configs" / "accelerate" / "zero3.yaml")
DDP = str(ROOT / "configs" / "accelerate" / "ddp.yaml")


def _launch(role: str, accelerate_config: str) -> dict:
    return {"mode": "processes", role: {"processes": 2, "accelerate_config": accelerate_config}}


def test_accelerate_files_and_environment_name_their_engine():
    assert preflight.engine_of_accelerate_file(ZERO3) == ("deepspeed", 3)
    assert preflight.engine_of_accelerate_file(DDP)[0] is None
    env = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}
    assert preflight.engine_from_env(env) == ("deepspeed", 3) and preflight.sharded(("deepspeed", 3))
    assert preflight.engine_from_env({"ACCELERATE_USE_FSDP": "true"}) == ("fsdp", None)
    assert preflight.engine_from_env({}) == (None, None) and not preflight.sharded(("deepspeed", 2))


@pytest.mark.parametrize("role", ["generator", "solver"])
def test_save_only_model_under_deepspeed_is_refused_in_one_line(role):
    with pytest.raises(ConfigError, match=rf"{role}.save_only_model: true under DeepSpeed") as exc:
        config_from_dict(
            {role: {"save_only_model": True}, "roles": {"mode": "full"}, "launch": _launch(role, ZERO3)}
        )
    assert "\n" not in str(exc.value) and "resume impossible" in str(exc.value)
    # the same setting without DeepSpeed stays allowed (resume then restarts the optimizer)
    config_from_dict({role: {"save_only_model": True}, "launch": _launch(role, DDP)})
    cfg = config_from_dict({role: {"save_only_model": True}})
    with pytest.raises(ConfigError, match="under DeepSpeed .accelerate launch."):
        preflight.check_role(cfg, role, ("deepspeed", 2), "accelerate launch")


def test_paper_preset_passes_with_zero3_and_its_comment_tells_the_truth():
    cfg = load_config(ROOT / "configs" / "paper.yaml", ["launch.mode=processes", f"launch.solver.accelerate_config={ZERO3}"])
    assert cfg.solver.save_only_model is False
    text = (ROOT / "configs" / "paper.yaml").read_text()
    assert "not exact" not in text and text.count("refused under DeepSpeed") == 2


@pytest.mark.parametrize("mode", ["lora", "shared"])
def test_in_process_solver_on_sharded_weights_is_refused(mode):
    data = {"roles": {"mode": mode}, "inference": {"backend": "hf"}, "launch": _launch("generator", ZERO3)}
    with pytest.raises(ConfigError, match=f"roles.mode {mode} with inference.backend hf under ZeRO-3/FSDP"):
        config_from_dict(data)
    cfg = config_from_dict({"roles": {"mode": mode}})
    with pytest.raises(ConfigError, match="deadlock"):
        preflight.check_role(cfg, "generator", ("fsdp", None))
    preflight.check_role(cfg, "solver", ("deepspeed", 3))  # phase C decodes no Solver inside its reward
    preflight.check_role(cfg, "generator", ("deepspeed", 2))  # ZeRO-2: every rank holds whole weights
    served = {"inference": {"backend": "openai", "base_url": "http://127.0.0.1:8000/v1"}}
    config_from_dict({**data, **served})
    config_from_dict({**data, "roles": {"mode": "full"}})  # full: the frozen Solver is its own whole model


def test_multi_rank_checkpoint_is_complete_only_with_its_marker(tmp_path):
    folder = tmp_path / "checkpoint-2"
    folder.mkdir()
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    assert ckpt.is_complete(folder)  # one process: trainer_state.json (written last) vouches for it
    (folder / "rng_state_0.pth").write_bytes(b"")
    (folder / "rng_state_1.pth").write_bytes(b"")
    assert not ckpt.is_complete(folder)  # another rank may still be writing: the marker must say so
    ckpt.finish_save(folder, 2, is_main=True)  # one process: no barrier to wait at
    assert ckpt.is_complete(folder)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("role", ["generator", "solver"])
def test_grpo_config_is_built_before_any_model_and_phase_c_loads_no_generator(tmp_path, monkeypatch, role):
    """Under ZeRO-3 the GRPOConfig (TrainingArguments) registers the HfDeepSpeedConfig that makes from_pretrained
    partition weights as they load; built after the models it came too late (a full fp32 copy per rank)."""
    from _training_support import small_cfg, weather_tasks
    from toolr0.training import roles, run

    calls: list[tuple[str, object]] = []
    real_build = run.build_grpo_config
    monkeypatch.setattr(run, "build_grpo_config", lambda *a, **k: calls.append(("config", None)) or real_build(*a, **k))
    monkeypatch.setattr(run.ckpt, "resume_point", lambda *a, **k: calls.append(("resume", None)))

    def load(*a, roles=(), **k):
        calls.append(("models", tuple(roles)))
        raise _Stop

    monkeypatch.setattr(roles, "load_role_models", load)
    with pytest.raises(_Stop):
        run.train_role(role, small_cfg(), tmp_path / "out", data=weather_tasks(2) if role == "solver" else None)
    assert [c[0] for c in calls] == ["config", "resume", "models"]
    assert calls[-1][1] == (("generator", "solver") if role == "generator" else ("solver",))
