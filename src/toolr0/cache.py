"""The one cache folder of toolr0: fetched models (`inference.models`) and benchmark files (`eval.hammer_fetch`)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "TOOLR0_CACHE"


def cache_dir() -> Path:
    """`TOOLR0_CACHE`, else the platform user cache dir for toolr0."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("toolr0"))
