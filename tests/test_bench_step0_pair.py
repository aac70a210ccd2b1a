"""bench/step0_pair.py: two step-0 runs paired completion by completion, re-verified with today's rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from step0_pair import main, pair_runs  # noqa: E402

from test_verify import CALLS, TOOLS, gen  # noqa: E402

SPEC = {"domain": "finance", "context_type": "single_turn", "menu_size": 2, "num_calls": 1}
GOOD = gen()
ECHO = gen(
    question="the user's message, which states every argument value of the calls exactly as written there"
)


def row(text: str, verdict: str, p_hat: float | None, spec: dict = SPEC) -> dict:
    r = {"spec": spec, "text": text, "verify": verdict}
    if verdict == "ok":
        r["parsed_task"] = {"question": "q", "tools": TOOLS, "calls": CALLS}
    if p_hat is not None:
        r["solver"] = {"native": {"p_hat": p_hat}}
    return r


def test_levels_counts_and_discordant_pairs():
    a = [row(GOOD, "ok", 0.5), row(GOOD, "ok", 0.0), row(GOOD, "ok", 1.0), row(ECHO, "echo", None)]
    b = [row(GOOD, "ok", 0.0), row(GOOD, "ok", 0.25), row(GOOD, "ok", 1.0), row(GOOD, "ok", 0.75)]
    res = pair_runs(a, b)["levels"]
    assert res["verified"] == {"a": 3, "b": 4, "only_a": 0, "only_b": 1, "p": 1.0}
    solved = res["solved"]
    assert (solved["a"], solved["b"], solved["only_a"], solved["only_b"]) == (2, 3, 1, 2)
    assert (res["in_band"]["a"], res["in_band"]["b"]) == (1, 2)
    assert res["multi_solved"]["a"] == res["multi_solved"]["b"] == 0  # one-call gold


def test_today_rules_override_a_recorded_ok_unless_kept():
    """A completion recorded 'ok' whose question echoes the prompt is unverified today; with --reverify b only
    run B is judged again, run A keeps its recorded verdict."""
    stale = [row(ECHO, "ok", 0.5)]
    fresh = [row(GOOD, "ok", 0.5)]
    both = pair_runs(stale, fresh)
    assert both["levels"]["verified"]["a"] == 0 and both["reasons_a"] != {"ok": 1}
    kept = pair_runs(stale, fresh, reverify="b")
    assert kept["levels"]["in_band"] == {"a": 1, "b": 1, "only_a": 0, "only_b": 0, "p": 1.0}


def test_verified_now_without_p_hat_counts_unsolved():
    res = pair_runs([row(GOOD, "echo", None)], [row(GOOD, "ok", 0.5)])
    assert res["levels"]["call_task"]["a"] == 1 and res["levels"]["solved"]["a"] == 0
    assert res["unmeasured_a"] == 1 and res["unmeasured_b"] == 0


def test_runs_on_other_specs_are_refused(tmp_path, capsys):
    other = dict(SPEC, menu_size=3)
    with pytest.raises(ValueError, match="same seeded specs"):
        pair_runs([row(GOOD, "ok", 0.5)], [row(GOOD, "ok", 0.5, other)])
    fa, fb = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    fa.write_text(json.dumps(row(GOOD, "ok", 0.5)) + "\n")
    fb.write_text(json.dumps(row(GOOD, "ok", 0.5, other)) + "\n")
    with pytest.raises(SystemExit) as e:
        main([str(fa), str(fb)])
    assert e.value.code == 2 and "same seeded specs" in capsys.readouterr().err
    fb.write_text(json.dumps(row(GOOD, "ok", 0.25)) + "\n")
    assert main([str(fa), str(fb), "--names", "base,trained"]) == 0
    assert "| in_band | 1 | 1 | 0 | 0 | 1.000 |" in capsys.readouterr().out
