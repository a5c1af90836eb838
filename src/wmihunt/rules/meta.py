"""Detection metadata: the story's custom ``wmihunt:`` block, or defaults for plain Sigma rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..backend.errors import INVALID, RuleRejected
from ..models import MODELS

if TYPE_CHECKING:
    from sigma.rule import SigmaRule

#: custom attribute holding the story metadata in a rule file
META_KEY = "wmihunt"

TYPES = ("TTP", "Hunting")
MISSING_MODES = ("null", "drop", "per_event")

#: upstream message placeholders that name a model column differently
FIELD_ALIASES = {"Computer": "dest", "ComputerName": "dest"}

#: JSONL keys a detection's own fields must not overwrite
RESERVED_KEYS = frozenset(
    {"detection", "detection_id", "type", "risk_score", "mitre", "message", "evidence", "rule"}
)

#: Sigma level -> (type, risk score) for user rules without a wmihunt block
LEVELS: dict[str, tuple[str, int]] = {
    "informational": ("Hunting", 10),
    "low": ("Hunting", 25),
    "medium": ("Hunting", 50),
    "high": ("TTP", 75),
    "critical": ("TTP", 100),
}

#: output fields of user rules, per table
DEFAULT_OUTPUT: dict[str, tuple[str, ...]] = {
    "process_start": (
        "process",
        "process_name",
        "process_path",
        "original_file_name",
        "process_id",
        "parent_process",
        "parent_process_name",
        "parent_process_path",
        "parent_process_id",
    ),
    "wmi_activity": (
        "kind",
        "operation",
        "name",
        "namespace",
        "query",
        "consumer_type",
        "destination",
        "consumer",
        "filter",
        "possible_cause",
    ),
    "script_block": (
        "script_block_id",
        "message_number",
        "message_total",
        "path",
        "script_block_text",
    ),
    "logon": ("logon_type", "target_user", "src_ip", "src_workstation"),
}

_PLACEHOLDER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_.]*)\$")
_ATTACK_TAG = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)


@dataclass(frozen=True)
class GroupField:
    """A summary grouping column: ``name`` is shown, ``columns`` are tried in order."""

    name: str
    columns: tuple[str, ...]

    @classmethod
    def parse(cls, spec: str) -> GroupField:
        alias, _, expr = spec.partition("=")
        if not expr:
            expr, alias = alias, alias.split("|")[0]
        return cls(alias.strip(), tuple(c.strip() for c in expr.split("|")))


@dataclass(frozen=True)
class RuleMeta:
    """Everything a finding says about the detection that produced it."""

    detection: str
    detection_id: str
    type: str
    risk_score: int
    mitre: tuple[str, ...]
    message: str
    message_upstream: str | None = None
    number: int | None = None
    risk_objects: tuple[str, ...] = ("dest",)
    threat_objects: tuple[str, ...] = ()
    data_sources: tuple[str, ...] = ()
    known_false_positives: str = ""
    group_by: tuple[GroupField, ...] = ()
    missing: str = "null"
    output_fields: tuple[str, ...] = ()
    upstream_status: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def fields(self) -> tuple[GroupField, ...]:
        """What a finding carries, by name: the output fields, then each grouping field not
        already there (a grouping alias such as ``event_text`` is the first of its columns
        that has a value). Summaries group these values, so they read only findings."""
        out = [GroupField(f, (f,)) for f in self.output_fields]
        names = set(self.output_fields)
        out += [g for g in self.group_by if g.name not in names]
        return tuple(out)


def placeholders(template: str) -> list[str]:
    """Column names a ``$field$`` template refers to (aliases resolved)."""
    return [FIELD_ALIASES.get(m, m) for m in _PLACEHOLDER.findall(template)]


def split_template(template: str) -> list[tuple[bool, str]]:
    """Template -> [(is_field, text)]: literal text and column names, in order."""
    out: list[tuple[bool, str]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        if m.start() > pos:
            out.append((False, template[pos : m.start()]))
        out.append((True, FIELD_ALIASES.get(m.group(1), m.group(1))))
        pos = m.end()
    if pos < len(template):
        out.append((False, template[pos:]))
    return out


def mitre_from_tags(rule: SigmaRule) -> tuple[str, ...]:
    ids = []
    for tag in rule.tags:
        m = _ATTACK_TAG.match(f"{tag.namespace}.{tag.name}")
        if m:
            ids.append(m.group(1).upper())
    return tuple(ids)


def _strs(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise RuleRejected(INVALID, f"wmihunt.{what} must be a list of strings")


def _check_columns(table: str, names: list[str], what: str) -> None:
    columns = set(MODELS[table].column_names)
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise RuleRejected(
            INVALID, f"wmihunt.{what} names unknown {table} columns: {', '.join(unknown)}"
        )


def meta_for(rule: SigmaRule, table: str) -> RuleMeta:
    """Story metadata from the rule's ``wmihunt:`` block, else defaults from Sigma fields."""
    block = rule.custom_attributes.get(META_KEY)
    if block is None:
        return _default_meta(rule, table)
    if not isinstance(block, dict):
        raise RuleRejected(INVALID, "wmihunt: must be a mapping")
    try:
        type_ = str(block["type"])
        risk = int(block["risk_score"])
        message = str(block["message"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RuleRejected(
            INVALID, f"wmihunt block needs type, risk_score, message ({exc})"
        ) from exc
    if type_ not in TYPES:
        raise RuleRejected(INVALID, f"wmihunt.type must be one of {TYPES}, not {type_!r}")
    if not 0 <= risk <= 100:
        raise RuleRejected(INVALID, f"wmihunt.risk_score {risk} is outside 0-100")
    summary = block.get("summary") or {}
    group_by = tuple(
        GroupField.parse(s) for s in _strs(summary.get("group_by"), "summary.group_by")
    )
    missing = str(summary.get("missing", "null"))
    if missing not in MISSING_MODES:
        raise RuleRejected(INVALID, f"wmihunt.summary.missing must be one of {MISSING_MODES}")
    output = _strs(block.get("output_fields"), "output_fields") or DEFAULT_OUTPUT[table]
    upstream_msg = block.get("message_upstream")
    _check_columns(table, list(output), "output_fields")
    _check_columns(table, [c for g in group_by for c in g.columns], "summary.group_by")
    _check_columns(table, placeholders(message), "message")
    if upstream_msg:
        _check_columns(table, placeholders(str(upstream_msg)), "message_upstream")
    clash = (set(output) | {g.name for g in group_by}) & RESERVED_KEYS
    if clash:
        raise RuleRejected(INVALID, f"wmihunt field names clash with finding keys: {sorted(clash)}")
    known = {
        "number", "upstream_id", "upstream_name", "type", "risk_score", "risk_objects",
        "threat_objects", "mitre", "data_sources", "message_upstream", "message",
        "known_false_positives", "summary", "output_fields", "upstream_status",
    }  # fmt: skip
    return RuleMeta(
        detection=str(block.get("upstream_name") or rule.title),
        detection_id=str(block.get("upstream_id") or rule.id or rule.title),
        type=type_,
        risk_score=risk,
        mitre=_strs(block.get("mitre"), "mitre") or mitre_from_tags(rule),
        message=message,
        message_upstream=str(upstream_msg) if upstream_msg else None,
        number=int(block["number"]) if block.get("number") is not None else None,
        risk_objects=_strs(block.get("risk_objects"), "risk_objects") or ("dest",),
        threat_objects=_strs(block.get("threat_objects"), "threat_objects"),
        data_sources=_strs(block.get("data_sources"), "data_sources"),
        known_false_positives=str(block.get("known_false_positives") or ""),
        group_by=group_by,
        missing=missing,
        output_fields=output,
        upstream_status=block.get("upstream_status"),
        extra={k: v for k, v in block.items() if k not in known},
    )


def _default_meta(rule: SigmaRule, table: str) -> RuleMeta:
    level = rule.level.name.lower() if rule.level is not None else "medium"
    type_, risk = LEVELS.get(level, LEVELS["medium"])
    columns = set(MODELS[table].column_names)
    extra = [f for f in rule.fields if f in columns]  # Sigma 'fields', already mapped
    output = tuple(dict.fromkeys([*DEFAULT_OUTPUT[table], *extra]))
    return RuleMeta(
        detection=rule.title,
        detection_id=str(rule.id) if rule.id is not None else rule.title,
        type=type_,
        risk_score=risk,
        mitre=mitre_from_tags(rule),
        message=f"Sigma rule '{rule.title.replace('$', '')}' matched on $dest$ (user $user$)",
        known_false_positives="; ".join(rule.falsepositives),
        group_by=tuple(GroupField(c, (c,)) for c in ("dest", "user", *output)),
        missing="null",
        output_fields=output,
    )
