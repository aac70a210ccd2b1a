"""Atomic writes and torn-line-tolerant JSONL reading."""

from toolr0.io import append_jsonl, atomic_write_json, atomic_write_jsonl, read_jsonl


def test_jsonl_roundtrip_with_lone_surrogate(tmp_path):
    rows = [{"q": "caf\u00e9"}, {"q": "bad \ud800 surrogate"}]
    path = tmp_path / "a.jsonl"
    atomic_write_jsonl(path, rows)
    path.read_bytes().decode("utf-8")  # valid UTF-8 on disk
    assert list(read_jsonl(path)) == rows
    assert "café" in path.read_text(encoding="utf-8")  # readable where possible


def test_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "b.jsonl"
    append_jsonl(path, [{"i": 0}, {"i": 1}])
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"i": 2')  # a writer killed mid-line
    assert [r["i"] for r in read_jsonl(path)] == [0, 1]


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
