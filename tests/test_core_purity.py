"""The core must stay engine-free: importing every core module pulls in no torch, transformers or TRL."""

import pkgutil
import subprocess
import sys

import toolr0.core

FORBIDDEN = ("torch", "transformers", "trl", "peft", "vllm", "accelerate")


def test_core_imports_no_engine():
    modules = [m.name for m in pkgutil.walk_packages(toolr0.core.__path__, "toolr0.core.")]
    assert modules, "no core modules found"
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = sorted(k for k in sys.modules if k.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported engines: {out.stdout.strip()}"


def test_cli_help_does_not_import_engines():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from toolr0.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        f"bad = sorted(k for k in sys.modules if k.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"`toolr0 --help` imported engines: {out.stdout.strip()}"
