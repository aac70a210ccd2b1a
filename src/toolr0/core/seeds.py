"""Every seed of a run, derived from the config's one master `seed` by `seed_for` (the only place seeds are
made; spec §6.5 fixes 13 as the reference seed).

Derived seeds are stable 31-bit hashes of (master, iteration, use, batch), so a resumed run redraws exactly
the batches it lost and no two uses share a random stream.
"""

from __future__ import annotations

import hashlib

# use -> what it drives; "train" and "service" are the master seed itself (the presets always set the GRPO
# seeds equal to the loop seed, so their runs are unchanged), every other use is hashed per iteration
USES = {
    "train": "GRPO of both roles: model init, data order (TRL seed / data_seed); the specs of a standalone "
    "`toolr0 train generator`",
    "service": "frozen-Solver service sampling (phase A r_diff / judge, stage-B cross-verify and pass@K)",
    "generator_prompts": "the Generator's training specs of iteration t",
    "spec": "the candidate specs of stage B, iteration t",
    "gen": "candidate sampling of stage B, iteration t, batch b",
    "references": "which in-prompt references each candidate prompt of stage B, iteration t shows "
    "(loop.references)",
    "ref_probe": "the frozen Solver's probe of batch b's verified call tasks, iteration t, whose solved tasks "
    "become references (loop.references)",
    "derive": "which unique call tasks of iteration t also give a derived no-call task (loop.no_call_from_calls)",
    "derive_other": "which unique call tasks of iteration t also give a no-call task with another domain's menu, "
    "and whose menu (loop.no_call_from_other_menus)",
    "xv": "cross-verification of iteration t, batch b",
    "passk": "pass@K difficulty of iteration t, batch b",
    "compose": "which solved one-call tasks of iteration t are paired into two-call tasks, their order and menus "
    "(loop.two_call_from_solved)",
    "passk_composed": "pass@K difficulty of iteration t's composed two-call tasks, batch b",
    "select": "curriculum selection of iteration t",
    "samples": "the sample tasks shown in TensorBoard and summary.md for iteration t (read by people only)",
}


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts, e.g. (seed, iteration, "gen", batch)."""
    h = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()
    return int(h[:8], 16) & 0x7FFFFFFF


def seed_for(master: int, use: str, iteration: int | None = None, batch: int | None = None) -> int:
    """The seed of one random `use` (a key of `USES`) of iteration `iteration` (and batch `batch`).

    "train" and "service" return `master`; the rest `derive_seed(master, iteration, use[, batch])`.
    """
    if use not in USES:
        raise ValueError(f"unknown seed use {use!r}; one of {', '.join(USES)}")
    if use in ("train", "service"):
        return master
    if iteration is None:
        raise ValueError(f"seed use {use!r} needs the iteration")
    return derive_seed(master, iteration, use) if batch is None else derive_seed(master, iteration, use, batch)
