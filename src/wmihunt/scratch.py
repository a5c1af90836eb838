"""Scratch folders of a scan in the system's temporary folder, and the sweep of those a
killed scan left behind.

Each name carries the process id (``wmihunt-spill-<pid>-<kind>-...``), so a later scan can
tell a folder whose scan is gone from one that is still in use. Two kinds: the worker
processes' spilled batches (``ingest.parallel``) and DuckDB's offload of an in-memory
case that outgrows its memory limit (``store.connect``).
"""

from __future__ import annotations

import os
import shutil
import tempfile

PREFIX = "wmihunt-spill-"


def new_folder(kind: str) -> str:
    """Create a fresh scratch folder for this process; its path."""
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{kind}-")


def new_name(kind: str) -> str:
    """A path for a scratch folder that its user creates (and removes) itself."""
    fd, path = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-{kind}-")
    os.close(fd)
    os.unlink(path)
    return path


def sweep_stale() -> None:
    """Remove the scratch folders of scans that were killed (their process is gone)."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # gone: nobody will use these files
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        except OSError:
            pass  # alive (or not ours to signal): leave it
