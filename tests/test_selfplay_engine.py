"""Engine glue without heavy models: reward-mean extraction, the frozen Solver's one section, the
vLLM path's sampler wiring (with a stand-in sampler: no GPU here), the role-init chain, the live display."""

from __future__ import annotations

import io

from rich.console import Console

from toolr0.config import load_config
from toolr0.selfplay import engine as eng
from toolr0.selfplay.loop import _role_inits
from toolr0.selfplay.progress import Reporter, final_table
from toolr0.selfplay.rundir import RunDir
from toolr0.selfplay.train_record import reward_means


def test_reward_means_from_trl_logs():
    hist = [
        {"step": 1, "reward": 0.5, "rewards/a/mean": 0.2, "rewards/a/std": 9.0},
        {"step": 2, "reward": 1.0, "rewards/a/mean": 0.4},
    ]
    m = reward_means(hist)
    assert set(m) == {"total", "a"} and abs(m["total"] - 0.75) < 1e-12 and abs(m["a"] - 0.3) < 1e-12


class _RecordingSampler:
    """Answers every Solver prompt with a call of `w` and records the sampling params of each call."""

    def __init__(self):
        self.params = []

    def generate(self, prompts, params, adapter=None):
        self.params.append(params)
        return [
            ['<think>t</think><tool_call_answer>[{"name": "w", "arguments": {}}]</tool_call_answer>']
            * params.n
            for _ in prompts
        ]


def test_the_frozen_solver_reads_its_one_section():
    """Stage B passes tasks and a seed; k, τ, mode and temperatures come from `frozen_solver` alone (the
    stages' records: kept = agreement ≥ τ, and the K behind each p̂)."""
    from toolr0.inference.solver_service import build_solver_service

    over = [
        "frozen_solver.verify.k=3",
        "frozen_solver.verify.tau=0.4",
        "frozen_solver.verify.mode=full_call",
        "frozen_solver.verify.no_call=false",
        "frozen_solver.k=8",
    ]
    cfg = load_config(None, over)
    s = _RecordingSampler()
    svc = build_solver_service(cfg, s)
    task = {
        "question": "q",
        "tools": [{"name": "w", "description": "d", "parameters": {}}],
        "calls": [{"name": "w", "arguments": {}}],
    }
    no_call = {**task, "calls": []}
    assert svc.verifies(task) and not svc.verifies(no_call)
    [(a, extra)] = svc.cross_verify([task], seed=7)
    assert (a, extra) == (1.0, {"kept": True, "k": 3, "mode": "full_call"})
    xv = s.params[0]
    assert (xv.n, xv.seed, xv.temperature, xv.top_p, xv.max_new_tokens) == (3, 7, 0.001, 0.95, 1024)
    [r] = svc.pass_rates_detailed([task], seed=9)
    assert (r.p_hat, r.successes, r.K) == (1.0, 8, 8) and s.params[1].seed == 9


class _StandInVLLM:
    made: list = []

    def __init__(self, name):
        self.name, self.adapters = name, {}

    @classmethod
    def from_config(cls, model_cfg, inference_cfg):
        s = cls(model_cfg.name)
        cls.made.append(s)
        return s

    def add_adapter(self, name, path):
        self.adapters[name] = path

    def generate(self, prompts, params, adapter=None):
        return [[f"{self.name}|{adapter}|{params.seed}"] for _ in prompts]


def test_vllm_backend_samples_each_role_from_its_checkpoint(tmp_path, monkeypatch):
    import toolr0.inference.vllm_backend as vb

    monkeypatch.setattr(vb, "VLLMSampler", _StandInVLLM)
    _StandInVLLM.made = []
    run = RunDir(tmp_path)
    lora = load_config(None, ["inference.backend=vllm", "structured.enabled=false"])
    e = eng.build_engine(lora, run)
    g = e.generator("/ck/gen1", 1)
    assert g.generate([[{"role": "user", "content": "x"}]], [None], seed=5) == ["default|generator|5"]
    assert _StandInVLLM.made[-1].adapters == {"generator": "/ck/gen1"}
    assert e.models is None  # nothing loaded in-process for sampling
    full = load_config(None, ["inference.backend=vllm", "roles.mode=full"])
    e = eng.build_engine(full, run)
    e.generator("/ck/gen_full", 1)
    assert _StandInVLLM.made[-1].name == "/ck/gen_full" and not _StandInVLLM.made[-1].adapters
    e.generator(None, 1)
    assert _StandInVLLM.made[-1].name == "default"  # base model π₀


def test_role_init_chain(tmp_path):
    from toolr0.config import ToolR0Config, config_to_dict, dump_config

    run = RunDir(tmp_path)
    run.open(config_to_dict(ToolR0Config()), dump_config(ToolR0Config()))
    assert _role_inits(run, 1, shared=False) == (None, None)
    run.set_checkpoint("generator", 1, tmp_path / "g1")
    run.set_checkpoint("solver", 1, tmp_path / "s1")
    assert _role_inits(run, 2, shared=False) == (str(tmp_path / "g1"), str(tmp_path / "s1"))
    # shared weights: G_t continues from the shared model's latest state, S_{t-1}
    assert _role_inits(run, 2, shared=True) == (str(tmp_path / "s1"), str(tmp_path / "s1"))


def test_live_display_renders():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with Reporter(enabled=True, console=console, iterations=2) as rep:
        rep.stage_start(1, "generate", 10, "candidates")
        rep.advance(4)
        rep.update(rewards={"total": 0.5}, acceptance={"verify": "4/10 (40%)"})
        rep.stage_end(1, "generate", "10 generated, 4 pass verification")
    text = buf.getvalue()
    assert "toolr0 self-play" in text and "B1 generate" in text and "4/10" in text
    console.print(final_table([{"iter": 1, "generated": 10, "selected": 2}]))
    assert "self-play summary" in buf.getvalue()


def test_engines_and_fakes_satisfy_the_seam(tmp_path):
    from selfplay_fakes import FakeGeneratorEngine, _FakeGen
    from toolr0.inference.solver_service import SolverService
    from toolr0.selfplay.launch import ProcessEngine
    from toolr0.selfplay.seam import CandidateGenerator, Engine, FrozenSolver, StageBChild

    cfg, run = load_config(None), RunDir(tmp_path)
    for cls in (eng.RoleEngine, ProcessEngine, FakeGeneratorEngine):
        assert isinstance(cls(cfg, run), Engine), cls
    assert isinstance(ProcessEngine(cfg, run), StageBChild)
    assert not isinstance(eng.RoleEngine(cfg, run), StageBChild)
    procs = (CandidateGenerator, FrozenSolver)
    for impl, proto in ((_FakeGen, procs[0]), (eng._Generator, procs[0]), (SolverService, procs[1])):
        assert all(callable(getattr(impl, m, None)) for m in proto.__dict__ if not m.startswith("_")), impl
