"""The hand audit (`selfplay/audit.py`, `toolr0 audit`): which tasks reach the sheet, stage B's verdict per task,
the blind sheet and its labels read back, the agreement score, and the command line on a run directory."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from toolr0.selfplay.audit import (
    PENDING,
    SOLVED,
    UNSOLVED,
    audit_items,
    key_rows,
    parse_labels,
    score,
    score_markdown,
    sheet_markdown,
)
from toolr0.selfplay.funnel import seeded_sample

TOOL = {
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
}


def _cand(i: int, ok: bool = True, calls: int = 1, domain: str = "weather") -> dict:
    task = {
        "question": f"What is the weather in city {i}?",
        "tools": [TOOL],
        "calls": [{"name": "get_weather", "arguments": {"city": f"c{i}"}}] * calls,
        "domain": domain,
    }
    return {"id": f"i01-{i:06d}", "ok": ok, "reason": "ok" if ok else "echo", "task": task if ok else None}


def _stage_b():
    cands = [
        _cand(0),
        _cand(1),
        _cand(2),
        _cand(3),
        _cand(4, ok=False),
        _cand(5, calls=0),
        _cand(6),
        _cand(7),
    ]
    cands.append(dict(cands[7]))  # batch 0 written twice by a killed run: one item
    dedup = [{"id": "i01-000006", "kept": False, "duplicate_of": "i01-000000"}]
    xv = [
        {"id": "i01-000001", "agreement": 0.0, "kept": False},
        {"id": "i01-000000", "agreement": 1.0, "kept": True},
    ]
    pk = [
        {"id": "i01-000000", "p_hat": 0.25},
        {"id": "i01-000002", "p_hat": 0.0},
        {"id": "i01-000005", "p_hat": 1.0},
    ]
    return cands, dedup, xv, pk


def test_items_are_the_unique_verified_call_tasks_with_stage_bs_verdict():
    items = audit_items(*_stage_b())
    verdicts = {it["id"][-1]: it["verdict"] for it in items}
    # 4 failed verification, 5 is a no-call task, 6 a duplicate; 3 and 7 have no pass@K yet
    assert verdicts == {"0": SOLVED, "1": UNSOLVED, "2": UNSOLVED, "3": PENDING, "7": PENDING}
    whys = {it["id"][-1]: it["why"] for it in items}
    assert (
        whys["0"] == "p̂ 0.25" and whys["1"] == "cross-verification agreement 0.00" and whys["2"] == "p̂ 0.00"
    )
    with_no_call = audit_items(*_stage_b(), calls_only=False)
    assert [it["id"][-1] for it in with_no_call] == ["0", "1", "2", "3", "5", "7"]
    assert next(it for it in with_no_call if it["id"].endswith("5"))["kind"] == "no_call"


def test_sample_is_seeded_and_keeps_order():
    items = [{"id": str(i)} for i in range(50)]
    a, b = seeded_sample(items, 10, seed=3), seeded_sample(items, 10, seed=3)
    assert a == b and len(a) == 10 and [int(x["id"]) for x in a] == sorted(int(x["id"]) for x in a)
    assert seeded_sample(items, 100, seed=3) == items


def test_the_sheet_is_blind_and_its_labels_read_back_into_a_score():
    items = [it for it in audit_items(*_stage_b()) if it["verdict"] != PENDING]
    sheet = sheet_markdown(items, "Hand audit: test")
    assert "get_weather(city: string*, unit: string)`: Current weather of a city." in sheet
    assert "gold: `get_weather(city='c0')`" in sheet
    assert (
        "p̂" not in sheet and "cross-verification" not in sheet and "0.25" not in sheet
    )  # verdicts stay hidden
    assert sheet.count("label: ?") == 3
    # the reader: 0 solvable (pipeline solved), 1 solvable (pipeline dropped it), 2 left unlabelled
    filled = sheet.replace("label: ?", "label: Solvable", 1).replace("label: ?", "label: `yes`", 1)
    labels = parse_labels(filled)
    assert labels == {"i01-000000": True, "i01-000001": True, "i01-000002": None}
    res = score(key_rows(items), labels)
    assert res["scored"] == 2 and res["agree"] == 1 and res["unlabelled"] == 1
    assert res["table"] == {
        "solvable_solved": 1, "solvable_unsolved": 1, "unsolvable_solved": 0, "unsolvable_unsolved": 0
    }  # fmt: skip
    assert [d["id"] for d in res["disagreements"]] == ["i01-000001"]
    text = score_markdown(res)
    assert text.startswith("agreement: 1 of 2 (50%) labelled tasks; 1 not labelled")
    assert "i01-000001: hand solvable, pipeline unsolved (cross-verification agreement 0.00)" in text


def test_pending_tasks_are_not_scored():
    key = [{"id": "a", "verdict": PENDING}, {"id": "b", "verdict": UNSOLVED}]
    res = score(key, {"a": True, "b": False})
    assert res["scored"] == 1 and res["agree"] == 1 and res["pending"] == 1 and res["agreement"] == 1.0
    assert score([], {})["agreement"] is None


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_parse_labels_never_raises(text):
    labels = parse_labels(text)
    assert all(v in (True, False, None) for v in labels.values())
    assert parse_labels("## 1. x (one call, a)\nlabel: " + text.replace("\n", " ")).keys() == {"x"}


def _run_dir(tmp_path):
    cands, dedup, xv, pk = _stage_b()
    it = tmp_path / "run" / "iter_01"
    it.mkdir(parents=True)
    for name, rows in (("candidates", cands), ("dedup", dedup), ("crossverify", xv), ("passrates", pk)):
        (it / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "run"


def test_the_command_line_writes_a_sheet_and_scores_it(tmp_path):
    from toolr0.cli import app
    from toolr0.errors import ConfigError

    run = _run_dir(tmp_path)
    res = CliRunner().invoke(app, ["audit", "sheet", str(run), "--n", "4"])
    assert res.exit_code == 0, res.output
    sheet = run / "iter_01" / "audit.md"
    assert "4 tasks to label" in res.output and "not yet decided by stage B" in res.output
    key = [json.loads(x) for x in (run / "iter_01" / "audit.md.key.jsonl").read_text().splitlines()]
    assert len(key) == 4 and {k["verdict"] for k in key} <= {SOLVED, UNSOLVED, PENDING}
    sheet.write_text(sheet.read_text().replace("label: ?", "label: unsolvable"))
    res = CliRunner().invoke(app, ["audit", "score", str(sheet)])
    assert (
        res.exit_code == 0
        and "agreement: 1 of 2 (50%) labelled tasks; 0 not labelled, 2 not yet" in res.output
    )
    # stage B decides the two pending tasks after the sheet was written: the score reads the run again
    with (run / "iter_01" / "passrates.jsonl").open("a") as fh:
        fh.write(
            json.dumps({"id": "i01-000003", "p_hat": 0.5})
            + "\n"
            + json.dumps({"id": "i01-000007", "p_hat": 0.0})
            + "\n"
        )
    res = CliRunner().invoke(app, ["audit", "score", str(sheet)])
    assert "agreement: 2 of 4 (50%) labelled tasks; 0 not labelled, 0 not yet" in res.output
    assert "i01-000003: hand unsolvable, pipeline solved (p̂ 0.50)" in res.output
    with pytest.raises(ConfigError, match="a sheet is already there"):
        CliRunner().invoke(app, ["audit", "sheet", str(run)], catch_exceptions=False)
    with pytest.raises(ConfigError, match="iteration 2 has no candidates.jsonl"):
        CliRunner().invoke(app, ["audit", "sheet", str(run), "-i", "2", "--force"], catch_exceptions=False)
    with pytest.raises(ConfigError, match="not found"):
        CliRunner().invoke(app, ["audit", "score", str(tmp_path / "none.md")], catch_exceptions=False)
