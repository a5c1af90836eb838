"""Where every input record ends: normalized, skipped, or rejected (ARCHITECTURE decision 6).

Invariant, per file entry: ``read == normalized + skipped + rejected``. A record that cannot
even be delimited (a corrupt EVTX chunk, a truncated archive) is a *file-level* error:
it is reported in ``errors`` (or ``warnings`` when nothing was lost) with a position, and
``rejected`` counts the records known to be lost when that number is known.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .textpath import text_path

#: Cap on the error entries kept per file; the counts stay exact beyond it.
MAX_ERRORS_KEPT = 1000


def _text(position: object) -> object:
    return text_path(position) if isinstance(position, str) else position


@dataclass(slots=True)
class FileStats:
    """Accounting for one input file (or one archive member)."""

    path: str
    format: str = "unknown"
    read: int = 0
    normalized: int = 0
    skipped: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    #: skipped counts keyed by "channel:event_id"
    skipped_by_event: Counter[str] = field(default_factory=Counter)
    errors_dropped: int = 0

    def __post_init__(self) -> None:
        self.path = text_path(self.path)  # stored and printed: valid text (see textpath)

    def skip(self, channel: str, event_id: object) -> None:
        """Count one record read and skipped as not relevant."""
        self.read += 1
        self.skipped += 1
        self.skipped_by_event[f"{channel}:{event_id}"] += 1

    def reject(self, position: object, reason: str) -> None:
        """Count one record read and rejected, with where and why."""
        self.read += 1
        self.rejected += 1
        self.error(position, reason)

    def error(self, position: object, reason: str) -> None:
        """Record a problem at ``position`` without counting a record."""
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append({"position": _text(position), "reason": text_path(reason)})
        else:
            self.errors_dropped += 1

    def warn(self, position: object, reason: str) -> None:
        """Record a recoverable problem (nothing lost), e.g. a missing gzip trailer."""
        self.warnings.append({"position": _text(position), "reason": text_path(reason)})

    def accepted(self) -> None:
        """Count one record read and normalized."""
        self.read += 1
        self.normalized += 1

    @property
    def balanced(self) -> bool:
        return self.read == self.normalized + self.skipped + self.rejected

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "read": self.read,
            "normalized": self.normalized,
            "skipped": self.skipped,
            "rejected": self.rejected,
            "errors": list(self.errors),
            "errors_not_listed": self.errors_dropped,
            "warnings": list(self.warnings),
            "skipped_by_event": dict(self.skipped_by_event.most_common()),
        }


#: ``FileStats.format`` of an input whose content is already in the case (not read)
DUPLICATE = "duplicate"


@dataclass(slots=True)
class ScanStats:
    """Accounting for a whole scan: one entry per file or archive member."""

    files: list[FileStats] = field(default_factory=list)

    def add(self, stats: FileStats) -> None:
        self.files.append(stats)

    def totals(self) -> dict[str, int]:
        keys = ("read", "normalized", "skipped", "rejected")
        out = {k: sum(getattr(f, k) for f in self.files) for k in keys}
        out["files"] = len(self.files)
        out["files_with_errors"] = sum(1 for f in self.files if f.errors)
        #: inputs whose content was already in the case: logged, not read again
        out["duplicates"] = sum(1 for f in self.files if f.format == DUPLICATE)
        return out

    @property
    def has_errors(self) -> bool:
        return any(f.errors for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"files": [f.to_dict() for f in self.files], "totals": self.totals()}
