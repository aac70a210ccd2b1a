"""Paired comparison of two evaluations: discordant counts on common items and McNemar's exact p-value."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from toolr0.eval.paired import POOLED, mcnemar_exact_p, paired_markdown, paired_rows


def test_mcnemar_known_values():
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(0, 6) == 2 * 0.5**6
    assert mcnemar_exact_p(3, 3) == 1.0
    # 1 vs 9 discordant: 2 * (1 + 10) / 1024
    assert abs(mcnemar_exact_p(1, 9) - 22 / 1024) < 1e-12


@given(st.integers(0, 200), st.integers(0, 200))
def test_mcnemar_symmetric_and_in_range(a, b):
    p = mcnemar_exact_p(a, b)
    assert 0.0 < p <= 1.0 and p == mcnemar_exact_p(b, a)


def _row(bench, i, ok):
    return {"benchmark": bench, "id": f"{bench}/{i}", "correct": ok}


def test_paired_rows_common_items_only_last_row_wins():
    a = [_row("sealtool", i, i < 5) for i in range(10)] + [_row("toolalpaca", 0, True)]
    b = [_row("sealtool", i, i >= 3) for i in range(8)] + [_row("sealtool", 7, False)]
    (r,) = paired_rows(a, b)  # toolalpaca is only in A
    assert r["benchmark"] == "sealtool" and r["n"] == 8
    # A right on 0-4; B right on 3-6 (7 re-scored wrong): A only {0,1,2}, B only {5,6}
    assert (r["a_only"], r["b_only"]) == (3, 2)
    assert r["a_accuracy"] == 62.5 and r["b_accuracy"] == 50.0
    assert "| sealtool | 8 | 62.50 | 50.00 | 3 | 2 |" in paired_markdown([r], "base", "trained")


def test_paired_rows_pool_every_paired_item_last():
    a = [_row("sealtool", i, i < 5) for i in range(10)] + [_row("toolalpaca", i, i == 0) for i in range(4)]
    b = [_row("sealtool", i, i >= 3) for i in range(10)] + [_row("toolalpaca", i, i < 3) for i in range(4)]
    *per_bench, pooled = paired_rows(a, b)
    assert [r["benchmark"] for r in per_bench] == ["sealtool", "toolalpaca"] and pooled["benchmark"] == POOLED
    assert pooled["n"] == 14 and pooled["a_only"] == sum(r["a_only"] for r in per_bench) == 3
    assert pooled["b_only"] == sum(r["b_only"] for r in per_bench) == 7
    assert pooled["a_accuracy"] == round(100 * 6 / 14, 2) and pooled["mcnemar_p"] == round(
        mcnemar_exact_p(3, 7), 4
    )


def test_paired_rows_ignore_garbage_rows():
    assert paired_rows([None, {"id": 1}, "x"], [{"benchmark": "b"}]) == []  # type: ignore[list-item]
    assert paired_markdown([]) == ""


def test_load_items_one_row_per_id_and_torn_line_skipped(tmp_path):
    import json

    from toolr0.eval.items import load_rows
    from toolr0.eval.paired import load_items

    lines = [json.dumps(_row("sealtool", 0, False)), json.dumps(_row("sealtool", 1, True))]
    lines.append(json.dumps(_row("sealtool", 0, True)))  # re-scored on resume: this one wins
    (tmp_path / "items.jsonl").write_text("\n".join(lines) + '\n{"id": "sealtool/2", "bench')
    rows = load_items(tmp_path)
    assert sorted(r["id"] for r in rows) == ["sealtool/0", "sealtool/1"]
    assert load_rows(tmp_path)["sealtool/0"]["correct"] is True
    assert load_items(tmp_path / "missing") == []


def test_paired_comparison_imports_no_engine():
    import subprocess
    import sys

    code = (
        "import sys, toolr0.eval.paired, toolr0.eval.items\n"
        "print(','.join(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'transformers', 'trl'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
