"""Issue 29 item 5: in-process vLLM engines are torn down explicitly. A fake `vllm` module records every
engine opened and closed (the vLLM sampler's construction is monkeypatched, no GPU): at most one engine of
ours is open at a time, none while a GRPO phase trains (TRL's colocated engine would sit beside it), all are
closed at the end, and the RANK / WORLD_SIZE / MASTER_* variables TRL's colocated engine sets are restored."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from toolr0.selfplay.rundir import RunDir

pytest.importorskip("transformers")

from selfplay_fakes import tiny_config  # noqa: E402


class _Registry:
    def __init__(self):
        self.opened: list[int] = []
        self.closed: list[int] = []

    @property
    def live(self) -> list[int]:
        return [i for i in self.opened if i not in self.closed]


def _fake_vllm(reg: _Registry):
    class LLM:
        def __init__(self, model, **kw):
            self.id = len(reg.opened)
            reg.opened.append(self.id)
            self.llm_engine = SimpleNamespace(engine_core=SimpleNamespace(shutdown=self._shutdown))

        def _shutdown(self):
            reg.closed.append(self.id)

    return SimpleNamespace(LLM=LLM, SamplingParams=dict)


def _result():
    return SimpleNamespace(
        log_history=[],
        final_dir=None,
        global_step=0,
        start_step=0,
        resumed_from=None,
        seconds=0.0,
        seconds_per_step=None,
        peak_rss_gb=0.0,
        precision="fp32",
    )


def test_in_process_vllm_engines_are_torn_down_before_training_and_at_the_end(
    tmp_path, tiny_model_dir, monkeypatch
):
    import toolr0.inference.vllm_backend as vb
    import toolr0.training.run as trun
    from toolr0.selfplay.engine import RoleEngine

    reg = _Registry()
    monkeypatch.setattr(vb, "import_vllm", lambda: _fake_vllm(reg))
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    seen = {}

    def fake_train_solver(cfg_, data, out_dir, **kw):
        seen["live_at_training"] = list(reg.live)
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="localhost", MASTER_PORT="29777")
        return _result()

    monkeypatch.setattr(trun, "train_solver", fake_train_solver)
    cfg = tiny_config(tiny_model_dir, **{"inference.backend": "vllm", "roles.mode": "lora"})
    run = RunDir(tmp_path / "run")
    run.open({}, "")
    engine = RoleEngine(cfg, run)
    engine.generator(None, 1)  # stage B: the Generator's engine
    assert reg.live == [0]
    engine.solver(None, 1)  # the frozen Solver's engine replaces it: one engine at a time
    assert reg.closed == [0] and reg.live == [1]
    engine.train_solver(iteration=1, init=None, curriculum=tmp_path / "c.jsonl", out_dir=tmp_path / "s", reporter=_Rep())
    assert seen["live_at_training"] == []  # torn down before TRL builds its own (colocated) engine
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        assert k not in os.environ, k  # what the colocated engine set does not leak into the next engine
    engine.generator(None, 2)
    engine.close()
    assert reg.live == [] and sorted(reg.closed) == reg.opened == [0, 1, 2]


class _Rep:
    def note(self, *a, **k):
        pass

    def advance(self, *a, **k):
        pass

    def update(self, *a, **k):
        pass
