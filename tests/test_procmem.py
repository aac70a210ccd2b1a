"""`toolr0.procmem.peak_rss_gb`: the process's peak resident memory in GB, and it rises with what is touched."""

import subprocess
import sys

CHILD = """
from toolr0.procmem import peak_rss_gb
before = peak_rss_gb()
block = bytearray(300 * 1024 * 1024)  # zero-filled: every page written, so resident
print(before, peak_rss_gb(), len(block))
"""


def test_peak_rss_rises_by_what_the_process_touches():
    # a grandchild through a shell that does not exec it: Linux carries a process's peak RSS across fork and exec,
    # so a direct child would start at the test session's own peak
    cmd = ["sh", "-c", '"$0" -c "$1"; :', sys.executable, CHILD]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    before, after, _ = (float(x) for x in out.split())
    assert 0 < before < 0.2  # an interpreter and one stdlib module
    assert 0.31 <= after <= 0.2 + 0.4  # the 300 MiB (0.31 GB) block is resident at once
    assert after - before >= 0.2  # the peak before may hold pages freed since
