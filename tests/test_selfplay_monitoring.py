"""What a researcher watching a run sees: progress lines in a log file (no terminal), the stage lines, and the
TensorBoard funnel, p̂ histograms and sample-task tables of a short fake-Generator run (read back from the
event files with TensorBoard's own EventAccumulator)."""

from __future__ import annotations

import io
import time

from rich.console import Console

from toolr0.selfplay.progress import Reporter


def _log_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=False)  # what a redirected stderr looks like


def test_a_long_stage_prints_a_heartbeat_line_off_a_terminal(capsys):
    with Reporter(enabled=True, console=_log_console(), heartbeat_s=0.05) as rep:
        assert not rep.enabled  # no terminal: plain lines
        rep.stage_start(1, "generate", 500, "candidates")
        rep.advance(40)
        time.sleep(0.3)  # one long generation batch, no call from the stage
        beats = capsys.readouterr().err.splitlines()
        rep.stage_end(1, "generate", "500 generated, 80 pass verification")
        time.sleep(0.2)  # no stage running: no heartbeat
    after = capsys.readouterr().err.splitlines()
    assert beats and all(b.startswith("[iter 1] B1 generate + verify: 40/500 candidates, ") for b in beats)
    assert len(after) == 1 and "500 generated" in after[0]


def test_no_heartbeat_when_a_line_was_printed_recently(capsys):
    with Reporter(enabled=False, heartbeat_s=3600) as rep:
        rep.stage_start(1, "difficulty", 10, "tasks")
        time.sleep(0.1)
        rep.heartbeat()
    assert capsys.readouterr().err == ""
