"""`RewardValue`: a reward's value together with the reason it has that value."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RewardValue:
    """A reward value (always finite, inside the reward's documented range) and a short reason code."""

    value: float
    reason: str = "ok"

    def __float__(self) -> float:
        return self.value


def clip(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    """Clip to [lo, hi]; NaN becomes lo."""
    if not isinstance(x, int | float) or math.isnan(x):
        return lo
    return max(lo, min(hi, float(x)))
