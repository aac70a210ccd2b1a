"""Evaluation harness: the paper's Hammer-suite benchmarks and BFCL, scored offline.

- :mod:`toolr0.eval.items` defines :class:`~toolr0.eval.items.EvalItem` (one sample of any benchmark), draws
  fixed seeded subsets and reads an output folder's per-item rows (light: no model, no benchmark loading);
- :mod:`toolr0.eval.hammer_data` finds the Hammer test files (read at run time, never copied into the
  repository) and loads them into items; :mod:`toolr0.eval.hammer_fetch` downloads them at a pinned commit,
  sha256-checked, into the cache (``toolr0 data fetch``);
- :mod:`toolr0.eval.target` resolves ``--model``: a self-play run directory's newest Solver and its Solver format;
- :mod:`toolr0.eval.scoring` scores one Solver completion against gold calls (exact match + P/R/F1 + reason);
- :mod:`toolr0.eval.registry` holds every benchmark behind one small base class (name, display name,
  family, load, score, oracle predictions); the runner, report and CLI iterate it. It loads the families
  lazily: :mod:`toolr0.eval.hammer_family`, :mod:`toolr0.eval.bfcl_family`, and modules named by the user;
- :mod:`toolr0.eval.bfcl` adapts BFCL (official ``ast_checker`` of ``bfcl-eval``, optional extra);
- :mod:`toolr0.eval.corrupt` builds the gold/corrupted prediction sanity harness;
- :mod:`toolr0.eval.runner` generates (batched, greedy, resumable) and scores;
- :mod:`toolr0.eval.fingerprint` ties an output folder to one setting, the prompt the model reads included;
- :mod:`toolr0.eval.report` aggregates per-item rows into a summary JSON, a markdown table and comparisons;
- :mod:`toolr0.eval.paired` compares two evaluations item by item (McNemar's exact test).

Layer rule: core and inference only (engines imported lazily), plus the optional ``bfcl_eval``.
"""
