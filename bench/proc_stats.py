"""What a process (or the machine) has used, from /proc: for the benchmarks under bench/.

CPU time is far steadier than requests/s on a shared machine: other load moves the
rate from run to run, much less the CPU a process spends per request. And the CPU a
process got against the wall time that passed shows when it was starved of a core.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far; 0.0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory of process `pid` (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy so far (all cores, every process)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS  # all but idle and iowait


def load_average() -> float:
    """The machine's 1-minute load average (processes wanting a core)."""
    return os.getloadavg()[0]
