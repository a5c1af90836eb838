"""A pySigma backend that turns a Sigma rule into a SQL predicate over one model table.

Field names arrive already mapped to model columns by the processing pipeline
(``wmihunt.pipeline``), which also stores the target table in the pipeline state under
``wmihunt_table``. Every SQL spelling comes from the :class:`~wmihunt.backend.dialect.Dialect`.

Matching semantics (spec §3):
* strings compare case-insensitively (``lower()`` on both sides), ``*``/``?`` are wildcards,
  and ``%``, ``_`` and ``\\`` in values are escaped in LIKE patterns;
* ``not`` keeps rows whose field is missing: ``NOT coalesce(expr, false)``;
* a missing field never matches a positive test (SQL NULL semantics).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.deferred import DeferredQueryExpression
from sigma.conversion.state import ConversionState
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from ..models import MODELS
from .columns import LOWERED_PREFIX, relation_columns
from .dialect import DUCKDB, SPARK, Dialect
from .errors import KEYWORDS, REGEX, UNKNOWN_FIELD, UNSUPPORTED, RuleRejected

#: Pipeline state key holding the model table a rule runs on.
TABLE_STATE = "wmihunt_table"

_COMPARE = {
    CompareOperators.LT: "<",
    CompareOperators.LTE: "<=",
    CompareOperators.GT: ">",
    CompareOperators.GTE: ">=",
    CompareOperators.NEQ: "<>",
}
_RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}


def like_pattern(value: SigmaString, escape: str = "\\") -> str:
    """SigmaString -> LIKE pattern: ``*`` -> ``%``, ``?`` -> ``_``, ``%``/``_``/escape escaped."""
    out: list[str] = []
    for part in value.s:
        if isinstance(part, str):
            for ch in part:
                if ch in ("%", "_", escape):
                    out.append(escape)
                out.append(ch)
        elif part is SpecialChars.WILDCARD_MULTI:
            out.append("%")
        elif part is SpecialChars.WILDCARD_SINGLE:
            out.append("_")
        else:
            raise _placeholder_error(part)
    return "".join(out)


_RE_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def regex_of(value: SigmaString) -> str:
    """SigmaString -> an RE2/Java regex matching the same strings (anchored where Sigma is)."""
    parts = list(value.s)
    many = SpecialChars.WILDCARD_MULTI
    lead = bool(parts) and parts[0] is many
    trail = len(parts) > int(lead) and parts[-1] is many
    out: list[str] = ["" if lead else "^"]
    for part in parts[int(lead) : len(parts) - int(trail)]:
        if isinstance(part, str):
            out.extend("\\" + ch if ch in _RE_SPECIAL else ch for ch in part)
        elif part is many:
            out.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        else:
            raise _placeholder_error(part)
    out.append("" if trail else "$")
    return "".join(out)


def _placeholder_error(part: object) -> RuleRejected:
    name = part.name if isinstance(part, Placeholder) else repr(part)
    return RuleRejected(UNSUPPORTED, f"unresolved placeholder %{name}% (modifier 'expand')")


def _plain(value: SigmaString) -> str:
    parts = []
    for part in value.s:
        if not isinstance(part, str):
            raise _placeholder_error(part)
        parts.append(part)
    return "".join(parts)


def _classify(value: SigmaString) -> tuple[str, SigmaString]:
    """Pick the cheapest test: equals / contains / startswith / endswith, else LIKE."""
    if any(isinstance(p, Placeholder) for p in value.s):
        raise _placeholder_error(next(p for p in value.s if isinstance(p, Placeholder)))
    if not value.contains_special():
        return "equals", value
    many = SpecialChars.WILDCARD_MULTI
    if len(value) >= 2 and value.startswith(many) and value.endswith(many):
        core = value[1:-1]
        if not core.contains_special():
            return "contains", core
    if value.endswith(many) and not value[:-1].contains_special():
        return "startswith", value[:-1]
    if value.startswith(many) and not value[1:].contains_special():
        return "endswith", value[1:]
    return "like", value


#: Conversion-state key: (raw columns, lowered columns) a rule reads.
USED_STATE = "wmihunt_used"


def _used(state: ConversionState) -> tuple[set[str], set[str]]:
    used = state.processing_state.get(USED_STATE)
    if used is None:
        used = state.processing_state[USED_STATE] = (set(), set())
    return used


def columns_used(rule: SigmaRule) -> tuple[frozenset[str], frozenset[str]]:
    """(raw, lowered) columns a converted rule's predicate reads."""
    raw: set[str] = set()
    lowered: set[str] = set()
    for state in rule.get_conversion_states():
        r, lo = state.processing_state.get(USED_STATE, (set(), set()))
        raw |= r
        lowered |= lo
    return frozenset(raw), frozenset(lowered)


def _string_values(value: object) -> list[SigmaString]:
    if isinstance(value, SigmaExpansion):
        return [v for v in value.values if isinstance(v, SigmaString)]
    return [value] if isinstance(value, SigmaString) else []


def _mergeable(arg: object) -> bool:
    """A case-insensitive string test (or an expansion of them) without placeholders."""
    if not isinstance(arg, ConditionFieldEqualsValueExpression) or arg.field is None:
        return False
    value = arg.value
    values = value.values if isinstance(value, SigmaExpansion) else [value]
    return bool(values) and all(
        isinstance(v, SigmaString)
        and not isinstance(v, SigmaCasedString)
        and not any(isinstance(p, Placeholder) for p in v.s)
        for v in values
    )


class SqlBackend(TextQueryBackend):
    """Sigma -> SQL WHERE predicate over a wmihunt model table (DuckDB dialect)."""

    name: ClassVar[str] = "wmihunt SQL"
    identifier: ClassVar[str] = "wmihunt_sql"
    formats: ClassVar[dict[str, str]] = {
        "default": "SELECT statement over the model table",
        "where": "the predicate alone (for combining rules in one scan)",
    }
    requires_pipeline: ClassVar[bool] = True
    dialect: ClassVar[Dialect] = DUCKDB

    precedence: ClassVar[tuple[type[ConditionItem], type[ConditionItem], type[ConditionItem]]] = (
        ConditionNOT,
        ConditionAND,
        ConditionOR,
    )
    token_separator: str = " "
    eq_token: ClassVar[str] = " = "
    convert_or_as_in: ClassVar[bool] = False
    convert_and_as_in: ClassVar[bool] = False
    # CIDR: no native support; pySigma expands the network into prefix wildcards.
    cidr_expression: ClassVar[str | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        d = self.dialect
        self.or_token = d.or_token  # type: ignore[misc]
        self.and_token = d.and_token  # type: ignore[misc]
        self.not_token = "NOT"  # type: ignore[misc]
        self.group_expression = d.group_expression  # type: ignore[misc]

    # --- columns --------------------------------------------------------------------
    def _column(
        self, field: str | None, state: ConversionState, *, record: bool = True
    ) -> tuple[str, str]:
        """(quoted column, SQL type) of a mapped field on the rule's table."""
        if field is None:
            raise RuleRejected(KEYWORDS, "values without a field name (keywords)")
        table = state.processing_state.get(TABLE_STATE)
        model = MODELS.get(str(table))
        if model is None:
            raise RuleRejected(UNSUPPORTED, "no model table chosen by the pipeline")
        for col in model.columns:
            if col.name == field:
                if record:
                    _used(state)[0].add(field)
                return self.dialect.ident(field), col.sql_type
        raise RuleRejected(UNKNOWN_FIELD, f"{field!r} is not a column of {model.name}")

    def _text(self, field: str | None, state: ConversionState) -> str:
        col, sql_type = self._column(field, state)
        return col if sql_type == "VARCHAR" else self.dialect.text(col)

    def _lowered(self, field: str | None, state: ConversionState) -> str:
        """The lower-cased text of a column, precomputed once per row by the relation."""
        self._column(field, state, record=False)  # validates the field
        assert field is not None
        _used(state)[1].add(field)
        return self.dialect.ident(LOWERED_PREFIX + field)

    def _literal_lower(self, value: str) -> str:
        """Lower-cased literal; non-ASCII text is lowered by the engine, like the column."""
        if value.isascii():
            return self.dialect.string(value.lower())
        return self.dialect.lower(self.dialect.string(value))

    # --- boolean structure ------------------------------------------------------------
    #: OR-ed string tests on one field, from this many values on, become one RE2 alternation:
    #: one linear pass instead of a contains() per value. Measured over the 1,100 story +
    #: SigmaHQ process rules (docs/benchmarks.md, "Rule count"): from 12 values matching
    #: 65,920 rows took 30% less time than from 2 when every row was tested, but the
    #: longer predicates take longer to plan, and planning is most of the cost once each
    #: distinct row is tested once (``detect.DEDUPE_RULES``): from 2, 2.5 s; from 12, 2.7 s.
    merge_or_threshold: ClassVar[int] = 2

    def convert_condition_or(
        self, cond: ConditionOR, state: ConversionState
    ) -> str | DeferredQueryExpression | None:
        by_field: dict[str, list[SigmaString]] = {}
        for arg in cond.args:
            if _mergeable(arg):
                assert isinstance(arg, ConditionFieldEqualsValueExpression)
                by_field.setdefault(arg.field, []).extend(_string_values(arg.value))
        merged: dict[str, str] = {}
        for fld, values in by_field.items():
            if len(values) >= self.merge_or_threshold:
                alternation = "|".join(dict.fromkeys(regex_of(v) for v in values))
                pattern = f"(?is){alternation}"
                if self.dialect.validate_regex(pattern) is None:
                    merged[fld] = self.dialect.regex_expression.format(
                        expr=self._text(fld, state), pattern=self.dialect.string(pattern)
                    )
        if not merged:
            return super().convert_condition_or(cond, state)
        parts: list[str] = []
        emitted: set[str] = set()
        for arg in cond.args:
            fld = arg.field if _mergeable(arg) else None  # type: ignore[union-attr]
            if fld is not None and fld in merged:
                if fld not in emitted:  # the whole field's alternation, at its first value
                    parts.append(merged[fld])
                    emitted.add(fld)
                continue
            converted = (
                self.convert_condition(arg, state)
                if self.compare_precedence(cond, arg)
                else self.convert_condition_group(arg, state)
            )
            if converted is not None and not isinstance(converted, DeferredQueryExpression):
                parts.append(converted)
        joiner = f"{self.token_separator}{self.or_token}{self.token_separator}"
        return joiner.join(parts) if parts else self.empty_or_expression

    def convert_condition_not(
        self, cond: ConditionNOT, state: ConversionState
    ) -> str | DeferredQueryExpression | None:
        arg = cond.args[0]
        expr = self.convert_condition(arg, state)
        if expr is None or isinstance(expr, DeferredQueryExpression):
            return expr
        return self.dialect.not_expression.format(expr=expr)

    # --- strings ----------------------------------------------------------------------
    def _string_match(
        self,
        cond: ConditionFieldEqualsValueExpression,
        state: ConversionState,
        case_sensitive: bool,
    ) -> str:
        value = cond.value
        assert isinstance(value, SigmaString)
        d = self.dialect
        expr = self._text(cond.field, state) if case_sensitive else self._lowered(cond.field, state)
        kind, core = _classify(value)
        if kind == "like":
            pattern = like_pattern(core, d.like_escape)
            lit = d.string(pattern) if case_sensitive else self._literal_lower(pattern)
            return d.like_expression.format(expr=expr, pattern=lit, escape=d.string(d.like_escape))
        plain = _plain(core)
        lit = d.string(plain) if case_sensitive else self._literal_lower(plain)
        template = {
            "equals": d.equals_expression,
            "contains": d.contains_expression,
            "startswith": d.startswith_expression,
            "endswith": d.endswith_expression,
        }[kind]
        return template.format(expr=expr, value=lit)

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self._string_match(cond, state, case_sensitive=False)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaCasedString)
        return self._string_match(cond, state, case_sensitive=True)

    # --- other value types --------------------------------------------------------------
    def convert_condition_field_eq_val_num(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaNumber)
        col, sql_type = self._column(cond.field, state)
        number = str(cond.value.number)
        if sql_type == "VARCHAR":  # EventID is text in the models ("4688", "ProcessRollup2")
            return self.dialect.equals_expression.format(
                expr=col, value=self.dialect.string(number)
            )
        return self.dialect.equals_expression.format(expr=col, value=number)

    def convert_condition_field_eq_val_bool(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaBool)
        d = self.dialect
        col, sql_type = self._column(cond.field, state)
        if sql_type == "BOOLEAN":
            lit = d.true_literal if cond.value.boolean else d.false_literal
            return d.equals_expression.format(expr=col, value=lit)
        word = "true" if cond.value.boolean else "false"
        return d.equals_expression.format(
            expr=self._lowered(cond.field, state), value=d.string(word)
        )

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        value = cond.value
        assert isinstance(value, SigmaRegularExpression)
        flags = "".join(sorted(_RE_FLAGS[f] for f in value.flags))
        pattern = (f"(?{flags})" if flags else "") + str(value.regexp)
        if (why := self.dialect.validate_regex(pattern)) is not None:
            raise RuleRejected(REGEX, f"{pattern!r}: {why}")
        return self.dialect.regex_expression.format(
            expr=self._text(cond.field, state), pattern=self.dialect.string(pattern)
        )

    def convert_condition_field_eq_val_re_contains(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self.convert_condition_field_eq_val_re(cond, state)

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        value = cond.value
        assert isinstance(value, SigmaCompareExpression)
        col, sql_type = self._column(cond.field, state)
        expr = (
            col if sql_type in ("BIGINT", "INTEGER") else self.dialect.number_cast.format(expr=col)
        )
        return self.dialect.compare_expression.format(
            expr=expr, op=_COMPARE[value.op], value=str(value.number.number)
        )

    def convert_condition_field_eq_field(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        ref = cond.value
        assert isinstance(ref, SigmaFieldReference)
        d = self.dialect
        left = self._lowered(cond.field, state)
        right = self._lowered(ref.field, state)
        if ref.starts_with and ref.ends_with:
            return d.contains_expression.format(expr=left, value=right)
        if ref.starts_with:
            return d.startswith_expression.format(expr=left, value=right)
        if ref.ends_with:
            return d.endswith_expression.format(expr=left, value=right)
        return d.equals_expression.format(expr=left, value=right)

    def convert_condition_field_eq_val_null(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        col, _ = self._column(cond.field, state)
        return self.dialect.null_expression.format(expr=col)

    def convert_condition_field_eq_val_exists(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaExists)
        col, _ = self._column(cond.field, state)
        template = self.dialect.not_null_expression if cond.value else self.dialect.null_expression
        return template.format(expr=col)

    def convert_condition_field_eq_val_timestamp_part(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        raise RuleRejected(UNSUPPORTED, "timestamp part modifiers (minute, hour, day, ...)")

    def convert_condition_field_eq_query_expr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        raise RuleRejected(UNSUPPORTED, "query expression placeholders")

    # --- values without a field (keywords) ------------------------------------------------
    def convert_condition_val(self, cond: ConditionValueExpression, state: ConversionState) -> Any:
        raise RuleRejected(KEYWORDS, f"keyword {cond.value!s:.60} has no field to search")

    def convert_condition_val_str(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Any:
        return self.convert_condition_val(cond, state)

    def convert_condition_val_num(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Any:
        return self.convert_condition_val(cond, state)

    def convert_condition_val_re(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Any:
        return self.convert_condition_val(cond, state)

    def convert_condition_query_expr(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Any:
        return self.convert_condition_val(cond, state)

    # --- output -----------------------------------------------------------------------
    def finalize_query_where(
        self, rule: SigmaRule, query: Any, index: int, state: ConversionState
    ) -> str:
        return str(query)

    def finalize_query_default(
        self, rule: SigmaRule, query: Any, index: int, state: ConversionState
    ) -> str:
        table = str(state.processing_state.get(TABLE_STATE))
        _, lowered = _used(state)
        d = self.dialect
        extra = "".join(f", {c}" for c in relation_columns(table, (), lowered, d))
        return f"SELECT * FROM (SELECT *{extra} FROM {d.ident(table)}) t WHERE {query}"

    def finalize_output_where(self, queries: list[str]) -> list[str]:
        return queries


class SparkSqlBackend(SqlBackend):
    """Spark SQL: only the dialect differs."""

    name: ClassVar[str] = "wmihunt Spark SQL"
    identifier: ClassVar[str] = "wmihunt_spark"
    dialect: ClassVar[Dialect] = SPARK
