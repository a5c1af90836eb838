"""SQL dialects: every token that differs between SQL engines lives here, and only here.

The backend (``sql.py``) and the detection run (``detect.py``) build SQL exclusively through a
:class:`Dialect`, so supporting another engine means writing one small subclass of it.
:class:`SparkDialect` is that subclass for Spark SQL (3.3+); it is not wired to an engine
yet, but tests compile every story rule with it to keep the promise honest.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Dialect:
    """DuckDB SQL (the default engine)."""

    name: str = "duckdb"

    # --- boolean structure ------------------------------------------------------------
    and_token: str = "AND"
    or_token: str = "OR"
    #: Sigma NOT keeps events whose field is missing (NULL): ``NOT (x ILIKE ...)`` would be
    #: NULL for them and drop the row, so the negated expression is made two-valued first.
    not_expression: str = "NOT coalesce({expr}, false)"
    group_expression: str = "({expr})"
    true_literal: str = "true"
    false_literal: str = "false"

    # --- value conversions --------------------------------------------------------------
    lower_expression: str = "lower({expr})"
    text_cast: str = "CAST({expr} AS VARCHAR)"
    number_cast: str = "TRY_CAST({expr} AS DOUBLE)"

    # --- string matching (both sides already lower-cased for case-insensitive tests) ----
    equals_expression: str = "{expr} = {value}"
    contains_expression: str = "contains({expr}, {value})"
    startswith_expression: str = "starts_with({expr}, {value})"
    endswith_expression: str = "ends_with({expr}, {value})"
    like_expression: str = "{expr} LIKE {pattern} ESCAPE {escape}"
    like_escape: str = "\\"
    #: RE2 (linear time): attacker-written fields cannot make matching blow up.
    regex_expression: str = "regexp_matches({expr}, {pattern})"
    null_expression: str = "{expr} IS NULL"
    not_null_expression: str = "{expr} IS NOT NULL"
    compare_expression: str = "{expr} {op} {value}"

    # --- detection-run helpers (findings, summaries) --------------------------------------
    hash_expression: str = "md5({expr})"
    concat_expression: str = "concat({args})"
    json_object_expression: str = "json_object({pairs})"
    json_get_expression: str = "json_extract_string({expr}, {path})"
    #: spec §3.5: times print as %Y-%m-%dT%H:%M:%S
    time_format_expression: str = "strftime({expr}, '%Y-%m-%dT%H:%M:%S')"
    string_list_expression: str = "[{items}]::VARCHAR[]"
    #: row -> list of the indexes of the rules it matched (single-scan strategy): the
    #: items are NULL where a rule did not match, and ``list_distinct`` drops NULLs (else
    #: every matched row would unnest into one row per rule).
    matched_list_expression: str = "list_distinct([{items}])"
    unnest_expression: str = "unnest({expr})"
    #: computed once, then read by every rule (DuckDB would otherwise inline it per predicate)
    materialized_cte: str = "{name} AS MATERIALIZED ({query})"
    #: a stable per-row id of a base table, to join matches back and to chunk scans
    row_id: str = "rowid"
    #: a query's result kept for the next statements of the session
    temp_table: str = "CREATE OR REPLACE TEMP TABLE {name} AS {query}"
    #: the values of a group as a list (aggregate)
    list_aggregate_expression: str = "list({expr})"

    def ident(self, name: str) -> str:
        """Quote an identifier (``user`` is a keyword in DuckDB, so always quote)."""
        return '"' + name.replace('"', '""') + '"'

    def string(self, value: str) -> str:
        """A string literal; DuckDB literals have no backslash escapes, quotes are doubled."""
        return "'" + value.replace("'", "''") + "'"

    def validate_regex(self, pattern: str) -> str | None:
        """Return why ``pattern`` cannot run on this engine, or None when it can."""
        return _duckdb_regex_error(pattern)

    # small conveniences built on the tokens above
    def lower(self, expr: str) -> str:
        return self.lower_expression.format(expr=expr)

    def text(self, expr: str) -> str:
        return self.text_cast.format(expr=expr)

    def json_object(self, pairs: list[tuple[str, str]]) -> str:
        """``pairs`` = (key, SQL expression); keys are quoted here."""
        return self.json_object_expression.format(
            pairs=", ".join(f"{self.string(k)}, {v}" for k, v in pairs)
        )

    def json_get(self, expr: str, key: str) -> str:
        return self.json_get_expression.format(expr=expr, path=self.string(f"$.{key}"))

    def concat(self, args: list[str]) -> str:
        return self.concat_expression.format(args=", ".join(args)) if args else self.string("")


@cache
def _duckdb_regex_error(pattern: str) -> str | None:
    import duckdb  # local: the Spark dialect must not need DuckDB

    con = _regex_connection()
    try:
        con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    return None


@cache
def _regex_connection():
    import duckdb

    return duckdb.connect(":memory:")


DUCKDB = Dialect()


@dataclass(frozen=True)
class SparkDialect(Dialect):
    """Spark SQL 3.3+: the same rules, other spellings."""

    name: str = "spark"
    text_cast: str = "CAST({expr} AS STRING)"
    number_cast: str = "TRY_CAST({expr} AS DOUBLE)"
    contains_expression: str = "contains({expr}, {value})"
    startswith_expression: str = "startswith({expr}, {value})"
    endswith_expression: str = "endswith({expr}, {value})"
    #: Java regex, not RE2: backtracking cost is bounded only by the cluster's timeouts.
    regex_expression: str = "{expr} RLIKE {pattern}"
    json_object_expression: str = "to_json(named_struct({pairs}))"
    json_get_expression: str = "get_json_object({expr}, {path})"
    time_format_expression: str = "date_format({expr}, \"yyyy-MM-dd'T'HH:mm:ss\")"
    string_list_expression: str = "array({items})"
    matched_list_expression: str = "array_compact(array({items}))"
    unnest_expression: str = "explode({expr})"
    materialized_cte: str = "{name} AS ({query})"  # cache the DataFrame instead
    row_id: str = "_row_id"  # to be provided by the loader (monotonically_increasing_id)
    temp_table: str = "CREATE OR REPLACE TEMPORARY VIEW {name} AS {query}"  # then cache it
    list_aggregate_expression: str = "collect_list({expr})"

    def ident(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def string(self, value: str) -> str:
        """Spark literals process backslash escapes."""
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def validate_regex(self, pattern: str) -> str | None:
        import re

        try:
            re.compile(pattern)
        except re.error as exc:
            return str(exc)
        return None


SPARK = SparkDialect()
