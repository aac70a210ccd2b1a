"""The pure core's hot paths (issue 30: tests/test_fuzz_core.py's time) give exactly what they gave before they
were made faster. The code before the change is kept here as the reference:

- the prompt-echo scans (core/question_gate.py: echo_overlap, echo_coverage, and question_gate / is_prompt_echo
  through them), which now skip windows holding words no template has;
- parsing.parse_relaxed, which now skips the None/True/False regex when the word is absent, and the native
  reader's fenced/bare JSON step (native._from_json), which skips the fence regex when there is no fence."""

from __future__ import annotations

import ast
import random

import pytest

from test_fuzz_core import GENERATOR_SEEDS, SOLVER_SEEDS
from test_fuzz_core import _inputs as fuzz_inputs
from toolr0.core import native, parsing
from toolr0.core import question_gate as qg
from toolr0.core.prompts import template_texts

SEED = 30


# ------------------------------------------------------------------- the reference: the scans before the change
def old_echo_overlap(text, n, wildcards=True, max_words=5000):
    grams = qg._template_ngrams(n)
    words = qg._tokens(text)[:max_words]
    masks = qg._wild_masks(n) if wildcards else ((),)
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        for mask in masks:
            probe = gram if not mask else tuple(qg._WILD if k in mask else w for k, w in enumerate(gram))
            if probe in grams:
                return gram
    return None


def old_echo_coverage(text, n=qg.ECHO_COVERAGE_NGRAM, max_words=400):
    grams = qg._template_ngrams(n)
    words = qg._tokens(text)[:max_words]
    if not words:
        return 0.0
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if tuple(words[i : i + n]) in grams:
            for k in range(i, i + n):
                covered[k] = True
    return sum(covered) / len(words)


# --------------------------------------------------------------------------------------------- inputs
FILLER = "please book a table for four people in paris tomorrow at noon my account id is 4521 thanks".split()
VALUES = ["finance", "retail", "7", "3", "single_turn", "multi_turn", "weather", "2"]


def _inputs(n: int) -> list[str]:
    """Questions and raw outputs that copy template runs (exact, with placeholders filled, with a word or two
    changed) inside ordinary text, and ordinary text alone."""
    rng = random.Random(SEED)
    texts = [t for v in ("reference", "compact") for t in template_texts(v) if t.split()]
    out = []
    for _ in range(n):
        words = rng.choice(texts).split()
        start = rng.randrange(len(words))
        run = words[start : start + rng.choice([2, 4, 5, 6, 7, 9, 13, 30])]
        for _ in range(rng.choice([0, 0, 1, 2, 3])):  # a placeholder filled or a word changed
            if run:
                run[rng.randrange(len(run))] = rng.choice(VALUES + FILLER)
        before = rng.sample(FILLER, rng.randrange(0, 8))
        after = rng.sample(FILLER, rng.randrange(0, 8))
        text = " ".join(before + run + after)
        if rng.random() < 0.3:
            text = text.upper() if rng.random() < 0.5 else text.replace(" ", rng.choice(["\n", ", ", " - "]))
        if rng.random() < 0.1:
            text = " ".join(rng.sample(FILLER, len(FILLER)))  # no template run at all
        if rng.random() < 0.05:
            text = " ".join(text for _ in range(rng.randrange(2, 30)))  # long
        out.append(text)
    return out


INPUTS = _inputs(400)


@pytest.mark.parametrize(
    ("n", "wildcards"), [(6, True), (6, False), (12, False), (12, True), (4, True), (2, True)]
)
def test_echo_overlap_matches_the_plain_scan(n, wildcards):
    hits = 0
    for text in INPUTS:
        want = old_echo_overlap(text, n, wildcards)
        assert qg.echo_overlap(text, n, wildcards) == want, text
        assert qg.echo_overlap(text, n, wildcards, max_words=9) == old_echo_overlap(text, n, wildcards, 9), (
            text
        )
        hits += want is not None
    assert 10 < hits < len(INPUTS) - 20  # both outcomes are exercised


def test_echo_coverage_matches_the_plain_scan():
    values = [qg.echo_coverage(t) for t in INPUTS]
    assert values == [old_echo_coverage(t) for t in INPUTS]
    assert [qg.echo_coverage(t, 6, 20) for t in INPUTS] == [old_echo_coverage(t, 6, 20) for t in INPUTS]
    assert sum(v >= qg.ECHO_COVERAGE for v in values) > 20 and sum(v == 0 for v in values) > 20


def test_question_gate_and_raw_echo_unchanged(monkeypatch):
    raw = [f"<think>{t}</think><question>{t}</question> {t}" for t in INPUTS[:100]]
    new = [qg.question_gate(t) for t in INPUTS] + [qg.is_prompt_echo(t) for t in raw]

    def plain_overlap(words, n, wildcards):
        return old_echo_overlap(" ".join(words), n, wildcards, max_words=len(words))

    def plain_coverage(words, n):
        return old_echo_coverage(" ".join(words), n, max_words=len(words))

    monkeypatch.setattr(qg, "_overlap_in", plain_overlap)
    monkeypatch.setattr(qg, "_coverage_in", plain_coverage)
    old = [qg.question_gate(t) for t in INPUTS] + [qg.is_prompt_echo(t) for t in raw]
    assert new == old
    assert {"ok", "echo"} <= {r for _, r in new[: len(INPUTS)]}


# ----------------------------------------------------------------- the readers: parse_relaxed, native._from_json
def old_parse_relaxed(s):
    P = parsing
    if not isinstance(s, str):
        return P.ParseResult(False, None, "not_text")
    try:
        t = P.strip_fences(s)
        if not t:
            return P.ParseResult(False, None, "empty")
        if "..." in t and P.has_placeholder_ellipsis(t):
            return P.ParseResult(False, None, "ellipsis")
        r = P._json_loads(t)
        if r.ok:
            return r
        if len(t) <= P.MAX_LITERAL_EVAL_CHARS and not P._max_depth_exceeds(t, P.MAX_NESTING_DEPTH):
            try:
                return P.ParseResult(True, P._jsonish(P._quiet(ast.literal_eval, t)), "ok", "literal_eval")
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                pass
        replaced = t
        for k, pat in P._CONST_RE.items():
            replaced = pat.sub(P._CONST_JSON[k], replaced)
        if replaced != t:
            r2 = P._json_loads(replaced)
            if r2.ok:
                r2.method = "json_replaced"
                return r2
        return P.ParseResult(False, None, "unparseable")
    except Exception as e:  # noqa: BLE001
        return P.ParseResult(False, None, f"parse_error: {type(e).__name__}")


def old_from_json(body, out):
    N = native
    fences = N._FENCE_RE.findall(body)
    sources = [("fence", f) for f in fences] + [("bare", N._FENCE_RE.sub(" ", body).replace(N._PY_TAG, " "))]
    for wrapper, src in sources:
        calls = []
        for value in N._json_values(src):
            got = N._calls_of(value, need_shape=True)
            if got:
                calls.extend(got)
        if not calls and wrapper == "fence":
            r = parsing.parse_relaxed(src)
            got = N._calls_of(r.value, need_shape=True) if r.ok else None
            calls = got or []
        if calls:
            out.wrapper, out.calls, out.parsed = wrapper, calls, True
            out.value = [c.to_dict() for c in calls]
            out.answer_text = src.strip()
            out.reason = f"calls_in_{wrapper}"
            return True
    return False


def _reader_inputs() -> list[str]:
    """The fuzz test's own mutated replies and tasks (its seeds and mutations, another seed), plus Python-literal
    answers with and without None/True/False."""
    rng = random.Random(SEED)
    texts = list(fuzz_inputs(rng, SOLVER_SEEDS + [t for t, _ in GENERATOR_SEEDS], 600))
    texts += [
        '{"a": None, "b": true}',
        "[{'a': None, 'b': True}]",
        "[{'a': Nonesuch}]",
        "[{'a': 'None'}]",
        "{'x': False, 'y': (1, 2)}",
    ]
    texts += ["```json\n[{'name': 'f', 'arguments': {'a': None}}]\n```", "```\n{bad```", "x ``` y"]
    return [t for t in texts if isinstance(t, str)]


def test_parse_relaxed_and_the_native_reader_unchanged(monkeypatch):
    texts = _reader_inputs()
    # repr: every field, and a NaN read from the text compares equal to itself
    new_relaxed = [parsing.parse_relaxed(t) for t in texts]
    new_native = [repr(native.parse_native_output(t)) for t in texts]
    assert [repr(r) for r in new_relaxed] == [repr(old_parse_relaxed(t)) for t in texts]
    monkeypatch.setattr(parsing, "parse_relaxed", old_parse_relaxed)
    monkeypatch.setattr(native, "parse_relaxed", old_parse_relaxed)
    monkeypatch.setattr(native, "_from_json", old_from_json)
    assert new_native == [repr(native.parse_native_output(t)) for t in texts]
    methods = {r.method for r in new_relaxed}
    assert {"json", "literal_eval", "json_replaced"} <= methods
    assert all(
        any(f"reason='{r}'" in v for v in new_native) for r in ("calls_in_fence", "calls_in_bare", "no_call")
    )
