"""A managed OpenAI-compatible Solver server (`vllm serve` by default): build the command, start it, wait until
`/v1/models` answers, notice when it dies, stop it (terminate, then kill).

The self-play loop serves the frozen Solver this way when `server.managed` is on and `inference.backend` is
`openai`: one server at a time, restarted whenever the checkpoint to serve changes (so every iteration serves
the newest Solver) and stopped before a training phase needs the GPUs. The served model is always reachable
under `server.served_model_name`: a full model folder is served under that name; a LoRA adapter is served as
a LoRA module of that name on top of the base model. Its output goes to a log file whose tail is quoted
when it fails. Standard library only (subprocess, socket, urllib).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from toolr0.errors import ServiceUnreachableError, ToolR0Error


class ServerConfig(BaseModel):
    """`server` section: the managed frozen-Solver server of the self-play loop."""

    model_config = ConfigDict(extra="forbid")

    managed: bool = Field(
        False,
        description="Start, health-check, restart (new Solver each iteration) and stop the frozen-Solver "
        "server (needs inference.backend: openai; off: the server at inference.base_url is yours).",
    )
    command: list[str] = Field(
        default_factory=lambda: ["vllm", "serve"],
        description="Program and leading arguments; the model path and the flags below are appended.",
    )
    host: str = Field(
        "127.0.0.1",
        description="Address the server is queried on (and binds, unless bind is set); on several nodes the "
        "main node's address the others reach, e.g. its hostname.",
    )
    bind: str | None = Field(
        None,
        description="Address the server binds (vllm serve --host): None = host; '0.0.0.0' lets a second node "
        "reach it (then set host to this node's reachable address).",
    )
    port: int = Field(8000, ge=0, le=65535, description="Port of the server (0: pick a free one).")
    pick_free_port: bool = Field(
        False, description="A port in use: pick a free one instead of stopping with an error."
    )
    gpus: str | None = Field(
        None,
        description="CUDA_VISIBLE_DEVICES of the server process, e.g. '3' or '6,7' (None: inherit; refused on "
        "a multi-GPU launch plan, where it must not overlap launch.generator.gpus).",
    )
    tensor_parallel_size: int = Field(1, ge=1, description="--tensor-parallel-size (GPUs per model).")
    served_model_name: str = Field("solver", description="The model id the Solver is served under.")
    max_lora_rank: int = Field(64, ge=1, description="--max-lora-rank when a LoRA adapter is served.")
    extra_args: list[str] = Field(
        default_factory=list, description="More arguments, e.g. ['--gpu-memory-utilization', '0.85']."
    )
    startup_timeout_s: float = Field(900.0, gt=0, description="Seconds to wait for /v1/models to answer.")
    stop_timeout_s: float = Field(30.0, gt=0, description="Seconds between terminate and kill on stop.")
    poll_interval_s: float = Field(0.5, gt=0, description="Seconds between health polls while starting.")
    log_tail_lines: int = Field(15, ge=1, description="Lines of the server log quoted in an error.")
    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) else v  # `--set server.gpus=3` reads as an int

    watch_interval_s: float = Field(
        30.0,
        gt=0,
        description="While a child phase uses the server, the loop probes /v1/models this often (a dead "
        "process is noticed within a second).",
    )
    watch_failures: int = Field(
        3, ge=1, description="Probes in a row that get no answer within 10 s: the server hangs; stop the phase."
    )


EXIT_GRACE_S = 5.0  # a request to the server failed: how long to wait for its process to exit, if it is exiting


class ServerError(ToolR0Error):
    """The managed server could not start, died, or its port is taken."""


class ServerGone(ServerError, ServiceUnreachableError):
    """The managed server exited, or stopped answering while a phase used it."""


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on (host, port). SO_REUSEADDR as servers set it (uvicorn, http.server), so
    the TIME_WAIT connections of a just-stopped server do not count, while a listener still does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free on `host` (may be taken again before use; the start re-checks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """`preexec_fn` of a child: SIGTERM it when the process that started it dies (Linux), so a killed loop
    leaves no server or training job behind holding GPUs and ports. A no-op elsewhere."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    rows = [r.strip() for r in text.strip().splitlines() if r.strip()][-lines:]
    return " | ".join(rows) if rows else "(empty log)"


def _is_adapter(path: str | Path | None) -> bool:
    return path is not None and (Path(path) / "adapter_config.json").is_file()


class ManagedServer:
    """One server process serving one model (a model folder or hub id, optionally a LoRA adapter on it)."""

    def __init__(
        self,
        cfg: ServerConfig,
        model: str,
        log_path: str | Path,
        *,
        adapter: str | None = None,
        env: dict[str, str] | None = None,
        gpu_memory_utilization: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.gpu_memory_utilization = gpu_memory_utilization
        self.model = str(model)
        self.adapter = str(adapter) if adapter else None
        self.log_path = Path(log_path)
        self.extra_env = dict(env or {})
        self.port = cfg.port
        self.proc: subprocess.Popen[bytes] | None = None
        self._last_probe = 0.0
        self._probe_failures = 0

    @classmethod
    def for_checkpoint(
        cls, cfg: ServerConfig, base_model: str, checkpoint: str | None, log_path: str | Path, **kw: Any
    ) -> ManagedServer:
        """Serve `checkpoint` (a full model folder, or a LoRA adapter folder on `base_model`), else the base."""
        if checkpoint and _is_adapter(checkpoint):
            return cls(cfg, base_model, log_path, adapter=checkpoint, **kw)
        return cls(cfg, checkpoint or base_model, log_path, **kw)

    # ------------------------------------------------------------------------------------------ command
    @property
    def base_url(self) -> str:
        return f"http://{self.cfg.host}:{self.port}/v1"

    @property
    def bind(self) -> str:
        """The address the server listens on (`server.bind`, else `server.host`)."""
        return self.cfg.bind or self.cfg.host

    @property
    def served_model(self) -> str:
        return self.cfg.served_model_name

    def command(self) -> list[str]:
        c = self.cfg
        cmd = [*c.command, self.model, "--host", self.bind, "--port", str(self.port)]
        if self.adapter:
            cmd += ["--enable-lora", "--lora-modules", f"{c.served_model_name}={self.adapter}"]
            cmd += ["--max-lora-rank", str(c.max_lora_rank)]
        else:
            cmd += ["--served-model-name", c.served_model_name]
        if c.tensor_parallel_size > 1:
            cmd += ["--tensor-parallel-size", str(c.tensor_parallel_size)]
        if self.gpu_memory_utilization is not None and "--gpu-memory-utilization" not in c.extra_args:
            cmd += ["--gpu-memory-utilization", f"{self.gpu_memory_utilization:g}"]
        return cmd + list(c.extra_args)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.cfg.gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.cfg.gpus
        env.update(self.extra_env)
        return env

    def describe(self) -> str:
        gpus = f"CUDA_VISIBLE_DEVICES={self.cfg.gpus} " if self.cfg.gpus is not None else ""
        return gpus + shlex.join(self.command())

    # -------------------------------------------------------------------------------------- lifecycle
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> ManagedServer:
        """Start the process and wait until `/v1/models` lists the served model (bounded by the timeout)."""
        if self.running:
            return self
        c = self.cfg
        if self.port == 0:
            self.port = free_port(self.bind)
        elif not port_free(self.bind, self.port):
            if not c.pick_free_port:
                raise ServerError(
                    f"port {self.port} on {self.bind} is in use: stop what listens there, change server.port, "
                    "or set server.pick_free_port: true"
                )
            self.port = free_port(self.bind)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"$ {self.describe()}\n".encode())
            log.flush()
            try:
                self.proc = subprocess.Popen(
                    self.command(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env(),
                    start_new_session=True,  # its own process group: stop() reaches its workers too
                    preexec_fn=die_with_parent,
                )
            except OSError as exc:
                raise ServerError(
                    f"cannot start the Solver server ({shlex.join(self.command()[:2])}: {exc})"
                ) from None
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> list[str]:
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        last = "no answer yet"
        while True:
            self.check_alive("while starting")
            try:
                ids = self.models(timeout_s=min(5.0, self.cfg.startup_timeout_s))
                if self.served_model in ids:
                    return ids
                last = f"/v1/models lists {ids}, not {self.served_model!r}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"Solver server at {self.base_url} did not answer /v1/models within "
                    f"{self.cfg.startup_timeout_s:g} s ({last}); log tail: {_tail(self.log_path, self.cfg.log_tail_lines)}"
                )
            time.sleep(self.cfg.poll_interval_s)

    def models(self, timeout_s: float = 5.0) -> list[str]:
        with urllib.request.urlopen(f"{self.base_url}/models", timeout=timeout_s) as resp:
            data = json.loads(resp.read().decode("utf-8")).get("data") or []
        return [str(d.get("id")) for d in data if isinstance(d, dict)]

    def check_alive(self, when: str = "", wait_s: float = 0.0) -> None:
        """Raise a one-line `ServerError` with the log tail when the process has exited. `wait_s` > 0 first
        waits that long for it to exit: a server that crashes mid-request drops its connections while it
        exits, before it can be reaped, so the client sees the reset first (the sampler waits, see below)."""
        if self.proc is None:
            raise ServerError(f"Solver server at {self.base_url} was never started")
        try:
            rc = self.proc.wait(timeout=wait_s) if wait_s > 0 else self.proc.poll()
        except subprocess.TimeoutExpired:
            rc = None  # still running: the caller's own error (unreachable, timed out) stands
        if rc is not None:
            where = f" {when}" if when else ""
            raise ServerGone(
                f"Solver server at {self.base_url} exited with code {rc}{where}; log {self.log_path}, tail: "
                f"{_tail(self.log_path, self.cfg.log_tail_lines)}"
            )

    def watch(self) -> None:
        """Called over and over while another process (a child phase) uses the server: raises `ServerGone` at
        once when the process has exited, and when `watch_failures` /v1/models probes in a row (one every
        `watch_interval_s`) got no answer within 10 s (a hung server)."""
        self.check_alive("while a phase used it")
        now = time.monotonic()
        if now - self._last_probe < self.cfg.watch_interval_s:
            return
        self._last_probe = now
        try:
            self.models(timeout_s=10.0)
            self._probe_failures = 0
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self._probe_failures += 1
            if self._probe_failures >= self.cfg.watch_failures:
                raise ServerGone(
                    f"Solver server at {self.base_url} did not answer /v1/models {self._probe_failures} times in "
                    f"a row ({exc}); log {self.log_path}, tail: {_tail(self.log_path, self.cfg.log_tail_lines)}"
                ) from None

    def stop(self) -> int | None:
        """Terminate the server's process group, kill it after `stop_timeout_s`; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=self.cfg.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait(timeout=self.cfg.stop_timeout_s)
        return proc.returncode

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def sampler(self, **kwargs: Any) -> Any:
        """An `OpenAISampler` on this server's served model; an unreachable server raises this server's exit
        code and log tail (a server that died mid-phase) instead of a bare connection error. A failed request
        waits up to `EXIT_GRACE_S` for the process to exit (only on that error path): its sockets close
        before its exit code exists, so polling at once would miss a crash the request itself ran into."""
        from toolr0.inference.openai_backend import OpenAISampler

        return OpenAISampler(
            base_url=self.base_url,
            model=self.served_model,
            checkpoint_id=f"server:{self.adapter or self.model}",
            on_unreachable=lambda: self.check_alive("mid-phase", wait_s=EXIT_GRACE_S),
            **kwargs,
        )

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()
