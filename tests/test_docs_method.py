"""docs/method.md is the specification the code cites: every "spec §N" in the source, tests and docs names a
section of it (or a numbered item of §10), and no document points outside the repository for it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHOD = ROOT / "docs" / "method.md"
CITED = re.compile(r"spec §(\d+(?:\.\d+)?)")


def _sections() -> set[str]:
    text = METHOD.read_text(encoding="utf-8")
    heads = set(re.findall(r"^#+ (\d+(?:\.\d+)?)\.? ", text, re.M))
    pitfalls = text[text.index("## 10.") : text.index("## 11.")]
    return heads | {f"10.{n}" for n in re.findall(r"^(\d+)\. ", pitfalls, re.M)}


def _files() -> list[Path]:
    out = [
        p for d in ("src", "tests", "docs", "configs", "bench") for p in (ROOT / d).rglob("*") if p.is_file()
    ]
    return [
        p for p in [*out, ROOT / "README.md", ROOT / "ARCHITECTURE.md"] if p.suffix in (".py", ".md", ".yaml")
    ]


def test_every_spec_citation_resolves_in_docs_method():
    sections = _sections()
    assert {"1", "5.4", "7.3", "12.1", "10.4"} <= sections
    unknown = {
        f"{p.relative_to(ROOT)}: spec §{n}"
        for p in _files()
        for n in CITED.findall(p.read_text(encoding="utf-8", errors="replace"))
        if n not in sections
    }
    assert not unknown, sorted(unknown)


def test_no_document_points_at_the_spec_outside_the_repository():
    here = Path(__file__).resolve()
    outside = [
        str(p.relative_to(ROOT))
        for p in _files()
        if p != here and "shared/spec" in p.read_text(errors="replace")
    ]
    assert not outside, outside
