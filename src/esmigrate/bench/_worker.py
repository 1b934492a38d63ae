"""One approach in a process of its own: ``python -m esmigrate.bench._worker``.

The parent writes ``(ConnectionSettings, Job)`` pickled to stdin (credentials never go on a
command line) and reads one JSON line from stdout: the approach's wall time from the first
request to the alias swap, what it reported, and the process's peak RSS.
"""

from __future__ import annotations

import pickle
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

import orjson

from esmigrate.bench._approaches import APPROACHES, Job
from esmigrate.cluster import connect
from esmigrate.config import ConnectionSettings


def main() -> None:
    settings, job = pickle.load(sys.stdin.buffer)
    assert isinstance(settings, ConnectionSettings)
    assert isinstance(job, Job)
    with connect(settings) as cluster:
        began = time.perf_counter()
        measured = APPROACHES[job.approach][1](cluster, job)
        seconds = time.perf_counter() - began
    sys.stdout.buffer.write(
        orjson.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), **asdict(measured)}) + b"\n"
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory. On Linux from ``VmHWM``: ``ru_maxrss`` keeps the
    parent's high-water mark across fork and exec, which would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


if __name__ == "__main__":
    main()
