"""`toolr0 data fetch`: the four Hammer test files, pinned and sha256-checked, into the toolr0 cache.

The files are the processed test sets of the Hammer evaluation suite (MadeAgents/Hammer on GitHub,
Apache-2.0) at one pinned commit (docs/method.md §12.1). Each file is checked against its sha256 before it is
saved (atomically) under ``<cache>/benchmarks/hammer/`` (cache: ``$TOOLR0_CACHE``, else the user cache dir,
as for models); a file already there with the right hash is not fetched again. The source is the pinned
GitHub URL, or a mirror: a local folder holding the files (directly, under ``hammer/`` or under the
repository's ``data/test/original/``) or a base URL (``file://`` or ``https://``). ``$TOOLR0_BENCHMARKS``,
when it holds the files, is used as the mirror when none is given. Every failure is one line.

The evaluation finds the fetched files without options (``hammer_data.benchmarks_dir``). BFCL's data is not
fetched here: it ships inside the ``bfcl-eval`` package (``scripts/install_bfcl.sh``).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from toolr0.cache import cache_dir
from toolr0.errors import ToolR0Error
from toolr0.io import atomic_write_bytes, atomic_write_json

HAMMER_REPO = "MadeAgents/Hammer"
HAMMER_COMMIT = "ff415d9998180b5a68bbfdda3309ec04b472fb49"
HAMMER_PATH = "data/test/original"
HAMMER_URL = f"https://raw.githubusercontent.com/{HAMMER_REPO}/{HAMMER_COMMIT}/{HAMMER_PATH}"
# file -> sha256 of its bytes at HAMMER_COMMIT
HAMMER_SHA256: dict[str, str] = {
    "toolalpaca.json": "d61e5ede4dd32aa977fade4396b43c7cc39279a98409b64df13ed50815989754",
    "sealtool.json": "113238730efce7de0044547bc2d0aab5e877c4e1c2bafe711a3c2390075ebaef",
    "apibank_l1.json": "b6c129cd887da3e1965479bdbe56170adc0d315567c6a716a7c493de26887f19",
    "apibank_l2.json": "7476f8a5a514c64498de6ae0f457b0b342ba3571d08a556447dafad8d0be6544",
}
ENV_VAR = "TOOLR0_BENCHMARKS"
PROVENANCE_FILE = "PROVENANCE.json"
TIMEOUT_S = 60


def fetched_dir() -> Path:
    """The cache folder ``toolr0 data fetch`` fills: it holds ``hammer/`` (a data dir for the evaluation)."""
    return cache_dir() / "benchmarks"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_url(source: str) -> bool:
    return "://" in source


def _mirror_file(folder: Path, name: str) -> Path | None:
    for sub in (Path(), Path("hammer"), Path(HAMMER_PATH)):
        if (folder / sub / name).is_file():
            return folder / sub / name
    return None


def _read(source: str, name: str) -> bytes:
    """The bytes of ``name`` from a base URL or a mirror folder; one-line errors."""
    if _is_url(source):
        url = f"{source.rstrip('/')}/{name}"
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:  # noqa: S310 (pinned or user URL)
                return resp.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ToolR0Error(
                f"cannot download {url} ({reason}); pass --mirror <folder> holding the files, or set {ENV_VAR}"
            ) from None
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise ToolR0Error(f"mirror {folder} is not a folder")
    path = _mirror_file(folder, name)
    if path is None:
        raise ToolR0Error(f"mirror {folder} has no {name} (looked in it, in hammer/ and in {HAMMER_PATH}/)")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ToolR0Error(f"cannot read {path}: {exc.strerror or exc}") from None


def default_source(names: Iterable[str] = HAMMER_SHA256) -> tuple[str, str]:
    """(source, why) when no --mirror is given: ``$TOOLR0_BENCHMARKS`` if it holds the files, else GitHub."""
    env = os.environ.get(ENV_VAR)
    if env and all(_mirror_file(Path(env).expanduser(), n) for n in names):
        return env, f"${ENV_VAR}"
    return HAMMER_URL, f"{HAMMER_REPO}@{HAMMER_COMMIT[:8]}"


def fetch_hammer(
    mirror: str | os.PathLike | None = None,
    *,
    dest: str | os.PathLike | None = None,
    force: bool = False,
    files: dict[str, str] | None = None,
    echo: Callable[[str], Any] = print,
) -> Path:
    """Fetch, check and cache the Hammer files; returns the data dir (the folder holding ``hammer/``).

    ``mirror``: a folder or base URL to read from instead of GitHub; ``dest``: the data dir to fill (default
    :func:`fetched_dir`); ``files``: name -> sha256 (default :data:`HAMMER_SHA256`; tests pass their own)."""
    table = HAMMER_SHA256 if files is None else files
    if mirror is not None:
        source, why = str(mirror), "--mirror"
    else:
        source, why = default_source(table)
    root = Path(dest).expanduser() if dest is not None else fetched_dir()
    target = root / "hammer"
    for name, want in table.items():
        path = target / name
        if not force and path.is_file() and sha256_of(path.read_bytes()) == want:
            echo(f"{name}: already in {target} (sha256 ok)")
            continue
        data = _read(source, name)
        got = sha256_of(data)
        if got != want:
            raise ToolR0Error(
                f"{name} from {source}: sha256 {got[:16]}… does not match the pinned {want[:16]}… "
                f"({HAMMER_REPO}@{HAMMER_COMMIT[:8]}); nothing saved for it"
            )
        atomic_write_bytes(path, data)
        echo(f"{name}: {len(data):,} bytes from {source} ({why}), sha256 ok")
    atomic_write_json(
        root / PROVENANCE_FILE,
        {
            "repository": f"https://github.com/{HAMMER_REPO}",
            "commit": HAMMER_COMMIT,
            "path": HAMMER_PATH,
            "license": "Apache-2.0",
            "sha256": table,
            "source": source,
        },
    )
    return root
