"""The project's pySigma backend: Sigma rules -> SQL over the model tables, per dialect.

The backend itself (``sql``) is imported on first use: running compiled rules needs only
the dialects, and pySigma takes a fifth of a second to import.
"""

from typing import Any

from .dialect import DUCKDB, SPARK, Dialect, SparkDialect
from .errors import RuleRejected

_FROM_SQL = ("TABLE_STATE", "SparkSqlBackend", "SqlBackend", "like_pattern")


def __getattr__(name: str) -> Any:
    if name in _FROM_SQL:
        from . import sql

        return getattr(sql, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DUCKDB",
    "SPARK",
    "TABLE_STATE",
    "Dialect",
    "RuleRejected",
    "SparkDialect",
    "SparkSqlBackend",
    "SqlBackend",
    "like_pattern",
]
