"""What a benchmark ran on: date, cores, memory and load average, printed at the head of its output."""

from __future__ import annotations

import os
import platform
import time

import psutil


def describe() -> str:
    """One line: local time, CPU count, memory, OS and the 1/5/15-minute load averages."""
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    memory = psutil.virtual_memory().total / 2**30
    return (f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, {memory:.0f} GiB, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, load {load}")


def load() -> str:
    """The 1-minute load average now (for lines printed during a long run)."""
    return f"load {os.getloadavg()[0]:.2f}"
