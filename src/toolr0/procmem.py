"""The process's peak resident memory, the one number the training phases (`training/run.py`) and the self-play
stage timer (`selfplay/monitor.py`) record beside wall time."""

from __future__ import annotations

import resource
import sys


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (GB; Linux reports KiB, macOS bytes)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * (1 if sys.platform != "darwin" else 1 / 1024) / 1e6

