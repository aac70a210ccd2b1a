"""Reading user YAML files (spec, prompt variants, configs) with one-line errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from toolr0.errors import ConfigError


def read_user_file(path: str | Path, what: str) -> str:
    """The text of a user-supplied file; a missing or unreadable file raises a one-line ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: {what} not found")
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from None


def parse_yaml(text: str, source: str) -> Any:
    """`yaml.safe_load` whose syntax errors become `<source>: line L, column C: YAML syntax error`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "<yaml>"
        raise ConfigError(f"{source}: {where}: YAML syntax error") from None
