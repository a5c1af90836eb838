"""Compiled rules and the loader's verdicts: what runs, what was rejected and why.

Nothing here needs pySigma: a rule set comes back from the cache as these classes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..backend.columns import relation_columns
from ..backend.dialect import DUCKDB, Dialect
from .meta import RuleMeta

STORY = "story"
USER = "user"
#: not a reason a rule is wrong: the compiler itself failed
INTERNAL = "internal compiler error"


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to run: its SQL predicate over one model table, and its metadata."""

    rule_id: str
    title: str
    table: str
    where: str
    meta: RuleMeta
    source: str  # 'story' | 'user'
    path: str
    logsource: str
    level: str | None = None
    #: columns the predicate reads as they are, and lower-cased (as ``_lc_<column>``)
    raw_columns: tuple[str, ...] = ()
    lowered_columns: tuple[str, ...] = ()

    def sql(self, dialect: Dialect = DUCKDB) -> str:
        """A standalone SELECT of the rule's matches (the detection run batches rules instead)."""
        extra = "".join(
            f", {c}" for c in relation_columns(self.table, (), self.lowered_columns, dialect)
        )
        source = f"SELECT *{extra} FROM {dialect.ident(self.table)}"
        return f"SELECT * FROM ({source}) t WHERE {self.where}"


@dataclass(frozen=True)
class Rejected:
    path: str
    title: str | None
    category: str
    detail: str


@dataclass
class RuleSet:
    compiled: list[CompiledRule] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    filters: int = 0

    def extend(self, other: RuleSet) -> None:
        self.compiled.extend(other.compiled)
        self.rejected.extend(other.rejected)
        self.filters += other.filters

    def rejected_by_reason(self) -> Counter[str]:
        return Counter(r.category for r in self.rejected)


__all__ = ["INTERNAL", "STORY", "USER", "CompiledRule", "Rejected", "RuleSet"]
