"""`toolr0 data fetch`: pinned, sha256-checked Hammer files into the cache, from a mirror folder or URL, never
the network here; the evaluation then finds them without options."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolr0.cli import app
from toolr0.errors import ToolR0Error
from toolr0.eval import hammer_fetch
from toolr0.eval.hammer_data import HAMMER_BENCHMARKS, benchmarks_dir, load_hammer
from toolr0.eval.hammer_fetch import HAMMER_SHA256, fetch_hammer, fetched_dir

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "benchmarks" / "hammer"
SAMPLE = [
    {
        "query": "Weather in Oslo?",
        "tools": [],
        "answers": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
    }
]


@pytest.fixture
def fake_mirror(tmp_path, monkeypatch):
    """A mirror folder with two small Hammer-format files, and the pinned table swapped for theirs."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    table = {}
    for name in ("toolalpaca.json", "sealtool.json"):
        data = json.dumps(SAMPLE * (2 if name == "sealtool.json" else 1)).encode()
        (mirror / name).write_bytes(data)
        table[name] = hashlib.sha256(data).hexdigest()
    monkeypatch.setattr(hammer_fetch, "HAMMER_SHA256", table)
    monkeypatch.setenv("TOOLR0_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TOOLR0_BENCHMARKS", raising=False)
    return mirror, table


def test_the_pinned_table_names_every_hammer_benchmark():
    assert set(HAMMER_SHA256) == {f for f, _, _ in HAMMER_BENCHMARKS.values()}
    assert len(hammer_fetch.HAMMER_COMMIT) == 40 and hammer_fetch.HAMMER_COMMIT in hammer_fetch.HAMMER_URL


def test_fetch_from_a_mirror_folder_checks_and_caches(fake_mirror, tmp_path):
    mirror, table = fake_mirror
    lines = []
    root = fetch_hammer(mirror, files=table, echo=lines.append)
    assert root == fetched_dir() == tmp_path / "cache" / "benchmarks"
    for name in table:
        assert (root / "hammer" / name).read_bytes() == (mirror / name).read_bytes()
    prov = json.loads((root / "PROVENANCE.json").read_text())
    assert prov["commit"] == hammer_fetch.HAMMER_COMMIT and prov["sha256"] == table
    assert all("sha256 ok" in line for line in lines)
    lines.clear()  # a second fetch finds the files cached and reads nothing
    fetch_hammer(tmp_path / "nowhere", files=table, echo=lines.append)
    assert all("already in" in line for line in lines)


def test_fetch_from_a_file_url_and_a_repository_layout(fake_mirror, tmp_path):
    mirror, table = fake_mirror
    repo = tmp_path / "repo" / "data" / "test" / "original"
    shutil.copytree(mirror, repo)
    root = fetch_hammer(tmp_path / "repo", dest=tmp_path / "a", files=table, echo=lambda _: None)
    assert sorted(p.name for p in (root / "hammer").glob("*.json")) == sorted(table)
    root = fetch_hammer(mirror.as_uri(), dest=tmp_path / "b", files=table, echo=lambda _: None)
    assert (root / "hammer" / "sealtool.json").read_bytes() == (mirror / "sealtool.json").read_bytes()


def test_a_sha256_mismatch_is_one_line_and_saves_nothing(fake_mirror, tmp_path):
    mirror, table = fake_mirror
    (mirror / "sealtool.json").write_text("[]")
    with pytest.raises(ToolR0Error, match="sealtool.json from .*sha256 .* does not match the pinned") as exc:
        fetch_hammer(mirror, dest=tmp_path / "d", files=table, echo=lambda _: None)
    assert "\n" not in str(exc.value) and not (tmp_path / "d" / "hammer" / "sealtool.json").exists()


def test_an_unreachable_source_is_one_line(fake_mirror, tmp_path):
    _, table = fake_mirror
    for source in ("http://127.0.0.1:9/hammer", (tmp_path / "gone").as_uri()):
        with pytest.raises(ToolR0Error, match="cannot download .*--mirror") as exc:
            fetch_hammer(source, dest=tmp_path / "d", files=table, echo=lambda _: None)
        assert "\n" not in str(exc.value)
    with pytest.raises(ToolR0Error, match="has no toolalpaca.json"):
        fetch_hammer(tmp_path, dest=tmp_path / "d", files=table, echo=lambda _: None)


def test_the_benchmarks_env_var_is_the_default_mirror(fake_mirror, monkeypatch):
    mirror, table = fake_mirror
    monkeypatch.setenv("TOOLR0_BENCHMARKS", str(mirror))
    lines = []
    fetch_hammer(files=table, echo=lines.append)
    assert all("($TOOLR0_BENCHMARKS)" in line for line in lines)


def test_the_evaluation_finds_the_fetched_cache(fake_mirror, tmp_path, monkeypatch):
    mirror, table = fake_mirror
    monkeypatch.chdir(tmp_path)  # no ../shared/benchmarks from here
    monkeypatch.setattr("toolr0.eval.hammer_data._repo_root", lambda: tmp_path / "clone")
    with pytest.raises(ToolR0Error, match="toolr0 data fetch"):
        benchmarks_dir()
    fetch_hammer(mirror, files=table, echo=lambda _: None)
    assert benchmarks_dir() == fetched_dir().resolve()
    assert [it.gold[0].arguments for it in load_hammer("sealtool")] == [{"city": "Oslo"}] * 2
    # an explicit folder and $TOOLR0_BENCHMARKS still win over the cache
    other = tmp_path / "other"
    (other / "hammer").mkdir(parents=True)
    assert benchmarks_dir(other) == other.resolve()
    monkeypatch.setenv("TOOLR0_BENCHMARKS", str(other))
    assert benchmarks_dir() == other.resolve()


def test_cli_fetch_with_mirror_and_help(fake_mirror, tmp_path):
    mirror, _ = fake_mirror
    r = CliRunner()
    assert r.invoke(app, ["data", "fetch", "--help"]).exit_code == 0
    res = r.invoke(app, ["data", "fetch", "--mirror", str(mirror), "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == str(fetched_dir())
    res = r.invoke(app, ["data", "fetch", "--mirror", str(tmp_path / "nope"), "--force"])
    assert isinstance(res.exception, ToolR0Error) and "is not a folder" in str(res.exception)


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared Hammer files are not beside this clone")
def test_the_pinned_hashes_match_the_real_files(tmp_path, monkeypatch):
    """The real files, copied into a mirror folder, pass the pinned table as they are."""
    monkeypatch.setenv("TOOLR0_CACHE", str(tmp_path / "cache"))
    mirror = tmp_path / "mirror" / "hammer"
    mirror.mkdir(parents=True)
    for name in HAMMER_SHA256:
        shutil.copy(SHARED / name, mirror / name)
    root = fetch_hammer(tmp_path / "mirror", echo=lambda _: None)
    for key, (name, size, _) in HAMMER_BENCHMARKS.items():
        assert (root / "hammer" / name).is_file() and len(load_hammer(key, root)) == size
