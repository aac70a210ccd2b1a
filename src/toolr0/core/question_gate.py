"""The question gate and prompt-echo detection (spec §5.1, plus hardened checks).

- :func:`question_gate` — the gate g of spec §5.1 plus hardened checks built from the default model's measured
  failure modes (echoed template sentences of both prompt variants, ``<…>`` placeholders, ``...``, refusals,
  markdown headers, pasted calls, questions put to the user), each with its own reason code.
- :func:`is_prompt_echo` — a whole Generator output that copies a prompt template outside ``<think>``.
- :func:`echo_overlap`, :func:`echo_coverage`, :func:`template_tool_names` — word n-grams and tool names shared
  with the prompt templates.

Hardened checks are ours, not the paper's. Nothing here raises on garbage input.
"""

from __future__ import annotations

import re
from functools import lru_cache
from operator import itemgetter
from typing import Any

# ---------------------------------------------------------------------------------------------- patterns
# Spec §5.1 placeholder / prompt-echo patterns (lower-cased substring tests) and the one regex.
SPEC_ECHO_PATTERNS = (
    "the generated user question here",
    "user question must be from the specified domain",
    "generate a new tool-calling task now",
    "control spec",
    "rules to satisfy",
    "private reasoning",
    "[the private reasoning here]",
)
SPEC_ECHO_REGEX = re.compile(r"\[.*generated user question.*\]", re.S)
MIN_QUESTION_CHARS = 8  # spec §5.1

# Hardened: template phrases of the reference code's prompt and of ours that a real user never writes
# (matched on word-normalised text, so punctuation and case do not matter).
ECHO_PHRASES = (
    "natural user question",
    "no bullet points",
    "meta instructions",
    "tool calling task",
    "gold tool call",
    "gold call",
    "available tools block",
    "tool call answer",
    "argument values used in the gold",
    "output exactly these four blocks",
)
# "tool call" alone is something a user may ask for ("make a tool call to fetch my calendar"); it marks an
# echo only beside a word about writing a task ("Generate ... a retail tool call.").
TOOL_CALL_META_WORDS = frozenset(
    "generate generated write create produce design compose craft output example sample task domain".split()
)
QUESTION_ECHO_NGRAM = 6  # a 6-word run copied from a prompt template marks the question as an echo
RAW_ECHO_NGRAM = (
    12  # outside <think>, a 12-word run copied from a prompt template marks the output as an echo
)
RAW_ECHO_MARKERS = ("control spec (must follow exactly)", "generate a new tool-calling task now")

ANGLE_PLACEHOLDER = re.compile(r"<\s*[A-Za-z_][\w \-|./]{0,60}>")
# `<urgent>` right after a word that introduces a literal ("the message <urgent>") is text the user wants sent,
# unless it is a slot name itself (`<message>`, `<message_text>`).
_LITERAL_INTRO = re.compile(
    r"\b(?:message|text|note|word|phrase|string|tag|label|title|subject|keyword|caption|comment|reply|status)"
    r"\s*$",
    re.I,
)
_SLOT_WORDS = frozenset(
    "message text note word phrase string tag label title subject keyword caption comment reply status content "
    "value name input placeholder".split()
)
# A quoted span ('…', "…", “…”, ‘…’); an apostrophe inside a word (I'm, can't) neither opens nor closes one.
_QUOTED = re.compile(
    r"(?<![\w'’])'(?:[^'\n]|'(?=\w))*+'(?!\w)|\"[^\"\n]*+\"|“[^”\n]*+”"
    r"|(?<![\w'’])‘(?:[^’\n]|’(?=\w))*+’(?!\w)"
)
# A free-standing "..." (a template slot such as "User: ..." or "[...]"), not a trailing "Before we..." in prose.
SLOT_ELLIPSIS = re.compile(r"(?:^|(?<=[\s:(\[{=]))(?:\.\.\.|\u2026)(?=$|[\s)\]}\"',.;])")
# Refusals: specific enough that ordinary user speech ("I cannot log in ...") is not caught.
REFUSAL = re.compile(
    r"\b(?:i['’]?m|i am) sorry,? (?:but|i\b|as\b)|\bas an ai\b|\bi apologi[sz]e,? (?:but|i\b)"
    r"|\b(?:i|i['’]m|i am) (?:cannot|can['’]?t|can not|unable to|not able to|won['’]?t|will not)"
    r" (?:help|assist|fulfil|fulfill|comply|provide|generate|create|complete|do that|answer|write)",
    re.I,
)
# A tool call or tool definition pasted into a single-turn question (`Call 1: {"name": "Forecast", "arguments":
# ...}`): the Generator wrote the answer into the request. Multi-turn transcripts may quote earlier calls.
PASTED_CALL = re.compile(
    r'\{\s*"name"\s*:\s*"[^"\n]{1,80}"\s*,\s*"(?:arguments|parameters|description)"\s*:', re.I
)
# The assistant asking its user ("Do you want current weather updates...?"), not a user's request; none of the
# 4,425 Hammer and BFCL questions starts so (measured 2026-12-02).
ASKS_USER = re.compile(
    r"^\W*(?:do you (?:want|need|wish)|would you like|what would you like|how (?:can|may) i (?:help|assist)"
    r"|can i help)\b",
    re.I,
)
_MD_HEADER = re.compile(r"^\s{0,3}#{1,6}\s+(?P<title>\S.*)$", re.M)
_MD_BOLD_LABEL = re.compile(r"^\s*\*\*[^*\n]{1,40}\*\*", re.M)
_WORD = re.compile(r"[a-z0-9]+")
_TEMPLATE_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


# ------------------------------------------------------------------------------------------ echo n-grams
def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


_WILD = "\x00"  # stands for a filled-in placeholder value (one word) in template n-grams
_TOKEN = re.compile(r"[a-z0-9_]+")
MAX_ECHO_WILDCARDS = 2
#: The prompt variants whose text a question must not echo: answer_first's question block is described in words
#: ("the user's message, which states every argument value ...") that the 0.5B model copied into 3 of 25 tasks.
ECHO_VARIANTS = ("reference", "compact", "answer_first")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


@lru_cache(maxsize=16)
def _template_ngrams(n: int, variants: tuple[str, ...] = ECHO_VARIANTS) -> frozenset[tuple[str, ...]]:
    """Word n-grams of every prompt template; a ``{placeholder}`` becomes the wildcard token ``_WILD``."""
    from toolr0.core.prompts import template_texts  # local: prompts imports spec, keep this module light

    grams: set[tuple[str, ...]] = set()
    for variant in variants:
        try:
            texts = template_texts(variant)
        except Exception:  # noqa: BLE001 - a broken variant must not break verification
            continue
        for text in texts:
            words: list[str] = []
            for k, segment in enumerate(_TEMPLATE_PLACEHOLDER.split(text)):
                if k:
                    words.append(_WILD)
                words.extend(_tokens(segment))
            for i in range(len(words) - n + 1):
                gram = tuple(words[i : i + n])
                if sum(w == _WILD for w in gram) <= MAX_ECHO_WILDCARDS:
                    grams.add(gram)
    return frozenset(grams)


@lru_cache(maxsize=8)
def _wild_masks(n: int) -> tuple[tuple[int, ...], ...]:
    masks: list[tuple[int, ...]] = [()]
    masks += [(i,) for i in range(n)]
    masks += [(i, j) for i in range(n) for j in range(i + 1, n)]
    return tuple(m for m in masks if len(m) <= MAX_ECHO_WILDCARDS)


@lru_cache(maxsize=16)
def _template_vocab(n: int) -> frozenset[str]:
    """Every word of the template n-grams (not the wildcard): a text n-gram with a word outside it can match a
    template n-gram only where a wildcard covers that word."""
    return frozenset(w for gram in _template_ngrams(n) for w in gram if w != _WILD)


@lru_cache(maxsize=8)
def _mask_getters(n: int, wildcards: bool) -> dict[tuple[int, ...], tuple[Any, ...]]:
    """For each set of window offsets whose words are outside the template vocabulary (at most
    ``MAX_ECHO_WILDCARDS``), the probes worth trying: one ``itemgetter`` per wildcard mask that covers every
    such offset, reading a window extended by one ``_WILD`` (index ``n``). Masks in ``_wild_masks`` order."""
    masks = _wild_masks(n) if wildcards else ((),)
    out: dict[tuple[int, ...], tuple[Any, ...]] = {}
    for oov in _wild_masks(n):
        getters = []
        for mask in masks:
            if set(oov) <= set(mask):
                idx = [n if k in mask else k for k in range(n)]
                getters.append(itemgetter(*idx) if n > 1 else (lambda w, i=idx[0]: (w[i],)))
        out[oov] = tuple(getters)
    return out


def _overlap_in(words: list[str], n: int, wildcards: bool) -> tuple[str, ...] | None:
    """:func:`echo_overlap` on words already tokenised and cut (the scan, without re-tokenising)."""
    grams = _template_ngrams(n)
    vocab = _template_vocab(n)
    getters = _mask_getters(n, wildcards)
    limit = MAX_ECHO_WILDCARDS if wildcards else 0
    oov = [k for k, w in enumerate(words) if w not in vocab]  # positions no template word can match
    first = 0  # index into oov of the first position >= i
    for i in range(len(words) - n + 1):
        while first < len(oov) and oov[first] < i:
            first += 1
        inside: list[int] = []
        k = first
        while k < len(oov) and oov[k] < i + n and len(inside) <= limit:
            inside.append(oov[k] - i)
            k += 1
        if len(inside) > limit:  # more outside words than wildcards can cover
            continue
        window = (*words[i : i + n], _WILD)
        for get in getters[tuple(inside)]:
            if get(window) in grams:
                return tuple(words[i : i + n])
    return None


def echo_overlap(text: str, n: int, wildcards: bool = True, max_words: int = 5000) -> tuple[str, ...] | None:
    """The first word n-gram of ``text`` that also occurs in a prompt template (a placeholder matching any one
    word when ``wildcards``), or None. Only the first ``max_words`` words are scanned."""
    return _overlap_in(_tokens(text)[:max_words], n, wildcards)


ECHO_COVERAGE_NGRAM = 4
ECHO_COVERAGE = (
    0.6  # share of a question's words inside 4-word runs copied from a template (paraphrased echo)
)


def echo_coverage(text: str, n: int = ECHO_COVERAGE_NGRAM, max_words: int = 400) -> float:
    """Share of the words of ``text`` covered by word n-grams that also occur in a prompt template."""
    return _coverage_in(_tokens(text)[:max_words], n)


def _coverage_in(words: list[str], n: int) -> float:
    """:func:`echo_coverage` on words already tokenised and cut."""
    if not words:
        return 0.0
    grams = _template_ngrams(n)
    vocab = _template_vocab(n)
    covered = [False] * len(words)
    run = 0  # template-vocabulary words in a row, ending at word j
    for j, w in enumerate(words):
        run = run + 1 if w in vocab else 0
        if run >= n and tuple(words[j - n + 1 : j + 1]) in grams:
            for k in range(j - n + 1, j + 1):
                covered[k] = True
    return sum(covered) / len(words)


@lru_cache(maxsize=4)
def template_tool_names(variants: tuple[str, ...] = ECHO_VARIANTS) -> frozenset[str]:
    """Tool names written in the prompt templates (the toy illustration's tools): a generated tool with one of
    these names was copied from the prompt."""
    from toolr0.core.prompts import template_texts

    names: set[str] = set()
    for variant in variants:
        try:
            for text in template_texts(variant):
                names.update(n.lower() for n in re.findall(r'"name":\s*"([A-Za-z_][A-Za-z0-9_]*)"', text))
        except Exception:  # noqa: BLE001
            continue
    return frozenset(names)


def _norm_words(text: str) -> str:
    return " ".join(_words(text))


def is_conversation(question: str) -> bool:
    """A multi_turn question: the ``# Conversation`` form of :func:`toolr0.core.prompts` (User / Agent lines)."""
    return question.strip().lower().startswith("# conversation")


def has_markdown(q: str) -> bool:
    for m in _MD_HEADER.finditer(q):
        if m.group("title").strip().lower() != "conversation":  # the multi_turn format's own header
            return True
    return _MD_BOLD_LABEL.search(q) is not None


# ------------------------------------------------------------------------------------------ question gate
def _unquoted(text: str) -> str:
    """``text`` with quoted spans blanked (same length): a request to translate 'I am sorry, but ...' is no
    refusal."""
    return _QUOTED.sub(lambda m: " " * len(m.group(0)), text)


def _is_literal_angle(text: str, m: re.Match[str], quoted: str) -> bool:
    inner = m.group(0)[1:-1].strip()
    if "_" in inner or inner.lower() in _SLOT_WORDS:
        return False
    if quoted[m.start() : m.end()] != m.group(0):  # inside a quoted span
        return True
    return _LITERAL_INTRO.search(text[: m.start()]) is not None


def has_angle_placeholder(text: str) -> bool:
    """A ``<…>`` slot (``<amount>``, ``<from_currency>``) other than a literal the user quotes or names
    (``the message <urgent>``, ``'<b>'``)."""
    quoted = _unquoted(text)
    return any(not _is_literal_angle(text, m, quoted) for m in ANGLE_PLACEHOLDER.finditer(text))


# A question that begins by describing its user ("The user wants ...", "the user's message, ...") is the prompt's
# placeholder or a description, not a request: 104 step-0 questions began so, none a real one (issue 28). The
# answer-first grammar bans the same opening (structured.question_banned_opening).
THIRD_PERSON_OPENING = re.compile(r"\s*the\s+user\b")
# The same anywhere in a single-turn question: the assistant asking its user ("What vehicle would you like to
# generate with ID 12345?", "What kind of medical information do you need ...?") or a description of the user ("...
# The user wants to know ...", "What does the user want ..."). 8 of the 17 verified tasks of the `cpu` preset's
# iteration 1 read so (1 of them solvable when read); none of the 1,648 single-turn Hammer and BFCL questions does
# (measured 2026-12-06; multi-turn transcripts quote assistants who ask, so they are exempt).
ASKS_USER_ANYWHERE = re.compile(r"\b(?:would you like|do you (?:want|need|wish))\b")
THIRD_PERSON_ANYWHERE = re.compile(
    r"\bthe user(?:['’]s)? (?:wants?|needs?|asks?|is asking|requests?|would like)\b|\bwhat (?:does|did) the user\b"
)

# A single-turn question that talks about the task's own tools or calls ("What are the parameters for the first
# call and the second call?", "What does this call do ...?"): the Generator describing its answer key, not a user's
# request. 15 of 86 verified tasks of i28p's pool and 7 of its 48 curriculum tasks read so, all junk when read;
# 3 of 3,799 Hammer and BFCL questions (all BFCL live irrelevance: "what are the tools u know for booking
# flights"), none of the call categories (issue 28, measured 2026-12-07).
TASK_MACHINERY = re.compile(
    r"\b(?:the|this|these|each|both|first|second|other|which) (?:tools?|calls?)\b"
    r"|\bwhat are the (?:parameters|arguments)\b"
)


def question_gate(question: Any) -> tuple[bool, str]:
    """Gate g of spec §5.1 plus hardened checks: ``(True, "ok")`` or ``(False, reason_code)``.

    Codes: ``missing_question`` (not text), ``question_short`` (< 8 chars), ``placeholder_question`` (spec
    patterns), and hardened ``echo``, ``question_placeholder`` (``<…>``), ``question_ellipsis``, ``refusal``,
    ``question_markdown``, ``question_has_call`` (a call or tool definition pasted into a single-turn question),
    ``asks_user`` (the assistant asking its user instead of a user's request; anywhere in a single-turn
    question), ``question_third_person`` (a question that begins "the user ...", or a single-turn one that says
    what "the user wants"), ``question_about_task`` (a single-turn question about "the tools", "the first call",
    "what are the parameters": the task's own answer key).
    """
    try:
        if not isinstance(question, str):
            return False, "missing_question"
        q = question.strip().lower()
        if len(q) < MIN_QUESTION_CHARS:
            return False, "question_short"
        if any(pat in q for pat in SPEC_ECHO_PATTERNS) or SPEC_ECHO_REGEX.search(q):
            return False, "placeholder_question"
        if REFUSAL.search(_unquoted(q)):
            return False, "refusal"
        normed = _norm_words(q)
        tokens = _tokens(q)  # once for both n-gram scans (echo_overlap's and echo_coverage's default caps)
        if (
            any(f" {p} " in f" {normed} " for p in ECHO_PHRASES)
            or (" tool call " in f" {normed} " and not TOOL_CALL_META_WORDS.isdisjoint(normed.split()))
            or _overlap_in(tokens[:5000], QUESTION_ECHO_NGRAM, True)
            or _coverage_in(tokens[:400], ECHO_COVERAGE_NGRAM) >= ECHO_COVERAGE
        ):
            return False, "echo"
        if has_angle_placeholder(question):
            return False, "question_placeholder"
        if SLOT_ELLIPSIS.search(q):
            return False, "question_ellipsis"
        if has_markdown(question):
            return False, "question_markdown"
        if not is_conversation(q) and PASTED_CALL.search(question):
            return False, "question_has_call"
        single_turn = not is_conversation(q)
        if ASKS_USER.search(_unquoted(q)) or (single_turn and ASKS_USER_ANYWHERE.search(_unquoted(q))):
            return False, "asks_user"
        if THIRD_PERSON_OPENING.match(q) or (single_turn and THIRD_PERSON_ANYWHERE.search(_unquoted(q))):
            return False, "question_third_person"
        if single_turn and TASK_MACHINERY.search(_unquoted(q)):
            return False, "question_about_task"
        return True, "ok"
    except Exception as exc:  # noqa: BLE001 - total by contract
        return False, f"gate_error:{type(exc).__name__}"


def _outside_think(text: str) -> str:
    return re.sub(r"<think>.*?</think>", " ", text, flags=re.S | re.I)


def is_prompt_echo(raw: str) -> bool:
    outside = _outside_think(raw)
    low = outside.lower()
    if any(m in low for m in RAW_ECHO_MARKERS):
        return True
    return echo_overlap(outside[:200_000], RAW_ECHO_NGRAM, wildcards=False, max_words=40_000) is not None
