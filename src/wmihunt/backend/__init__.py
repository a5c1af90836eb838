"""The project's pySigma backend: Sigma rules -> SQL over the model tables, per dialect."""

from .dialect import DUCKDB, SPARK, Dialect, SparkDialect
from .errors import RuleRejected
from .sql import TABLE_STATE, SparkSqlBackend, SqlBackend, like_pattern

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
