"""The run's managed frozen-Solver server (`server.managed`, docs/launch.md): at most one at a time, started for
one checkpoint (None: the base model), restarted when the checkpoint changes (every iteration serves the new
Solver, spec §10.10), and every start and stop recorded in the run's metrics.jsonl.

Both engines use it: `engine.RoleEngine` (phase A's reward and stage-B sampling in-process) and
`launch.ProcessEngine` (phase A in a child that queries the server the loop started).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolr0.selfplay.rundir import RunDir

if TYPE_CHECKING:
    from toolr0.config import ToolR0Config
    from toolr0.inference.server import ManagedServer


class ServedSolver:
    """Holds the one managed server of a run and the checkpoint it serves."""

    def __init__(self, cfg: ToolR0Config, run: RunDir):
        self.cfg, self.run = cfg, run
        self.server: ManagedServer | None = None
        self.checkpoint: str | None = None

    def serve(self, checkpoint: str | None) -> ManagedServer:
        """The server serving `checkpoint`: the running one if it already does, else a freshly started one."""
        from toolr0.inference.models import resolve_model
        from toolr0.inference.server import ManagedServer

        if self.server is not None and self.checkpoint == checkpoint and self.server.running:
            return self.server
        self.stop()
        base = str(resolve_model(self.cfg.model.name))
        server = ManagedServer.for_checkpoint(
            self.cfg.server,
            base,
            checkpoint,
            self.run.root / "server.log",
            gpu_memory_utilization=self.cfg.inference.gpu_memory_utilization,
        )
        self.server, self.checkpoint = server.start(), checkpoint
        self.run.log_metric(
            {
                "event": "server_start",
                "checkpoint": checkpoint,
                "url": server.base_url,
                "command": server.describe(),
            }
        )
        return server

    def stop(self) -> None:
        server, self.server, self.checkpoint = self.server, None, None
        if server is not None:
            self.run.log_metric({"event": "server_stop", "returncode": server.stop()})
