"""Run a command and measure it as a whole process tree: wall time, CPU, peak memory.

Peak memory is sampled from /proc every ``interval`` seconds over the command and all its
descendants (worker processes included):

* ``peak_rss_tree``: the largest sum of RSS over the tree seen at one sample (an upper
  bound: pages shared between a parent and its forked workers count once per process);
* ``peak_pss_tree``: the largest sum of PSS (shared pages split between their users), the
  closest to "memory this scan needs";
* ``max_rss_process``: the largest RSS of any single process, from ``wait4`` (the kernel's
  own high-water mark, not sampled: it includes every descendant the command waited for).

Linux only (reads /proc).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Measured:
    argv: list[str]
    returncode: int
    wall: float
    cpu: float  # user + system seconds of the tree (waited-for descendants)
    peak_rss_tree: int  # bytes
    peak_pss_tree: int  # bytes
    max_rss_process: int  # bytes
    stdout: str
    stderr: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stderr"] = self.stderr[-2000:]
        return d


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces or parentheses
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree(root: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            pids = tree(self.pid)
            self.peak_rss = max(self.peak_rss, sum(_rss(p) for p in pids))
            self.peak_pss = max(self.peak_pss, sum(_pss(p) for p in pids))
            self.done.wait(self.interval)


def measure(
    argv: list[str],
    *,
    cwd: str | Path | None = None,
    interval: float = 0.02,
    env: dict[str, str] | None = None,
) -> Measured:
    """Run ``argv`` to completion and return its measurements."""
    out_path = Path("/tmp") / f"wmihunt-bench-{os.getpid()}.out"
    err_path = out_path.with_suffix(".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, env=env)
        sampler = _Sampler(proc.pid, interval)
        sampler.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    out_path.unlink()
    err_path.unlink()
    return Measured(
        argv=argv,
        returncode=proc.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_tree=sampler.peak_rss,
        peak_pss_tree=sampler.peak_pss,
        max_rss_process=usage.ru_maxrss * 1024,
        stdout=stdout,
        stderr=stderr,
    )
