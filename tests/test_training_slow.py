"""Slow (opt in with `-m slow`): 2 Generator and 2 Solver GRPO steps on the packaged default model, LoRA,
bf16, 256-token completions — the same measurement as `bench/train_step.py` (run it under the heavy lock:
`OMP_NUM_THREADS=2 flock /tmp/toolr0_heavy.lock pytest -m slow tests/test_training_slow.py`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "bench" / "train_step.py"


def test_two_steps_per_role_on_default_model(tmp_path):
    pytest.importorskip("trl")
    from toolr0.inference.models import default_model_dir

    if not (default_model_dir() / "config.json").is_file():
        pytest.skip("default model not fetched (toolr0 model fetch)")
    r = subprocess.run(
        [sys.executable, str(BENCH), "--steps", "2", "--max-len", "256", "--no-results"],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    import json

    results = json.loads(r.stdout[r.stdout.index("[\n") :])
    assert [x["role"] for x in results] == ["generator", "solver"]
    for x in results:
        assert x["steps"] == 2 and x["seconds_per_step"] > 0
        assert x["peak_rss_gb"] < 23  # both roles must fit a 24 GiB machine
        assert len(x["rewards"]) == 2 and all(x["rewards"])
