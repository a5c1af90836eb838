"""Turn a finding's ``context`` (from ``wmihunt.context.for_finding``) into report sections.

The context layer owns its shapes; this module only recognises the common ones (a process
tree as ancestors/process/descendants or as a list of nodes, a script as text, key/value
objects, lists of rows) and falls back to a generic nested view for anything else, so an
unexpected shape is shown rather than dropped or raised on. Values stay plain text: the
template escapes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .fields import parse_time

#: Context keys in display order, with their section titles.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("tree", "Process tree"),
    ("origin", "Remote origin"),
    ("subscription", "WMI subscription"),
    ("script", "Script"),
    ("activity", "Host activity"),
    ("risk", "Risk"),
)

#: Sections shown unfolded; the others (activity, risk, unknown keys) start folded.
OPEN_SECTIONS = frozenset({"tree", "origin", "subscription", "script"})

MAX_ROWS = 100
#: Rows of a table (WMI events, processes, earlier findings of a window) shown per finding:
#: the page repeats a host's window for each of its findings, and the JSON lines output
#: keeps them all (at 100 the EVTX set's report was 40 MB).
MAX_TABLE_ROWS = 25
MAX_DEPTH = 5
MAX_TREE_NODES = 200

_NAME_KEYS = ("process_name", "name", "image", "process_path")
_CMD_KEYS = ("process", "command_line", "cmdline", "CommandLine")
_PID_KEYS = ("process_id", "pid")
_SELF_KEYS = ("process", "self", "node", "finding")
_SCRIPT_KEYS = ("text", "script", "script_block_text", "full_text", "content")
#: Keys whose text is multi-line by nature (kept with its newlines in a block).
BLOCK_KEYS = frozenset(
    {
        "text",
        "script",
        "script_block_text",
        "full_text",
        "content",
        "payload",
        "destination",
        "possible_cause",
        "query",
        "command_line",
        "process",
    }
)


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and len(value) == 0)


def generic(value: Any, depth: int = 0) -> dict[str, Any]:
    """A nested ``{"kind": map|table|list|text, ...}`` view of any JSON-like value.

    Empty values are left out of maps; a list of flat objects becomes a table.
    """
    if depth >= MAX_DEPTH:
        return {"kind": "text", "value": _scalar(value)[:2000], "block": False}
    if isinstance(value, Mapping):
        items = [(str(k), generic(v, depth + 1)) for k, v in value.items() if not _empty(v)]
        return {"kind": "map", "items": items[:MAX_ROWS]}
    if isinstance(value, list | tuple):
        table = _table(value)
        if table is not None:
            return {"kind": "table", **table}
        items = [generic(v, depth + 1) for v in value[:MAX_ROWS]]
        return {"kind": "list", "items": items, "more": max(0, len(value) - MAX_ROWS)}
    text = _scalar(value)
    return {"kind": "text", "value": text, "block": "\n" in text or len(text) > 300}


def _first(node: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        value = node.get(key)
        if value not in (None, ""):
            return value
    return None


def _node(node: Any, depth: int, role: str) -> dict[str, Any]:
    if not isinstance(node, Mapping):
        return {
            "depth": depth,
            "role": role,
            "name": _scalar(node),
            "cmd": "",
            "pid": "",
            "time": "",
            "user": "",
            "note": "",
        }
    name = _first(node, _NAME_KEYS)
    name = str(name).replace("/", "\\").rsplit("\\", 1)[-1] if name is not None else "?"
    time = parse_time(node.get("time"))
    return {
        "depth": depth,
        "role": node.get("role") or role,
        "name": name,
        "cmd": _scalar(_first(node, _CMD_KEYS)),
        "pid": _scalar(_first(node, _PID_KEYS)),
        "time": f"{time:%Y-%m-%d %H:%M:%S}" if time else _scalar(node.get("time")),
        "user": _scalar(node.get("user")),
        "note": _node_note(node),
    }


def _node_note(node: Mapping[str, Any]) -> str:
    """Why this node deserves a caveat: not logged, inferred, or linked by a reusable pid."""
    notes = []
    if node.get("logged") is False:
        notes.append("start not logged")
    if node.get("inferred") or node.get("parent_inferred"):
        notes.append("parent inferred")
    if node.get("linked_by") == "pid":
        notes.append("linked by pid")
    return ", ".join(notes)


def _descend(children: Any, depth: int, out: list[dict[str, Any]]) -> None:
    if not isinstance(children, list | tuple):
        return
    for child in children:
        if len(out) >= MAX_TREE_NODES:
            return
        out.append(_node(child, depth, "descendant"))
        if isinstance(child, Mapping):
            _descend(child.get("children"), depth + 1, out)


def _sorted_chain(nodes: Sequence[Any]) -> list[Any]:
    """Ancestors root first: sorted by time when every node has one, else as given."""
    times = [parse_time(n.get("time")) if isinstance(n, Mapping) else None for n in nodes]
    if nodes and all(t is not None for t in times):
        return [n for _, n in sorted(zip(times, nodes, strict=True), key=lambda p: p[0])]
    return list(nodes)


def tree_rows(tree: Any) -> list[dict[str, Any]] | None:
    """Indented rows (depth, role, name, cmd, pid, time, user) or None if not a tree."""
    rows: list[dict[str, Any]] = []
    if isinstance(tree, Mapping):
        ancestors = tree.get("ancestors") or tree.get("parents") or tree.get("chain") or []
        me = next((tree[k] for k in _SELF_KEYS if isinstance(tree.get(k), Mapping)), None)
        descendants = tree.get("descendants") or tree.get("children") or []
        if not (ancestors or me or descendants):
            return None
        for depth, node in enumerate(_sorted_chain(list(ancestors))[:MAX_TREE_NODES]):
            rows.append(_node(node, depth, "ancestor"))
        base = len(rows)
        if me is not None:
            rows.append(_node(me, base, "self"))
        _descend(descendants, base + 1, rows)
        return rows
    if isinstance(tree, list | tuple) and tree and all(isinstance(n, Mapping) for n in tree):
        for i, node in enumerate(tree[:MAX_TREE_NODES]):
            depth = node.get("depth", node.get("level", i))
            role = "self" if node.get("is_finding") or node.get("self") is True else "node"
            rows.append(_node(node, depth if isinstance(depth, int) else i, role))
        return rows
    return None


def _table(rows: Sequence[Any]) -> dict[str, Any] | None:
    """A list of flat dicts as columns + rows (all-empty columns dropped); None otherwise."""
    if not rows or not all(isinstance(r, Mapping) for r in rows):
        return None
    columns: dict[str, None] = {}
    for row in rows[:MAX_TABLE_ROWS]:
        for key, value in row.items():
            if isinstance(value, Mapping) or (
                isinstance(value, list | tuple) and any(isinstance(v, Mapping) for v in value)
            ):
                return None
            if not _empty(value):
                columns.setdefault(str(key), None)
    cols = list(columns)
    body = [[_cell(row.get(c)) for c in cols] for row in rows[:MAX_TABLE_ROWS]]
    return {"columns": cols, "rows": body, "more": max(0, len(rows) - MAX_TABLE_ROWS)}


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_scalar(v) for v in value)
    return _scalar(value)


def _kv(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Key/value pairs; nested values get a generic view."""
    pairs = []
    for key, value in obj.items():
        if _empty(value):
            continue
        if isinstance(value, Mapping | list | tuple):
            pairs.append({"key": str(key), "nested": generic(value, 1)})
        else:
            text = _scalar(value)
            pairs.append({"key": str(key), "value": text, "block": key in BLOCK_KEYS})
    return pairs


def _section(key: str, title: str, value: Any) -> dict[str, Any]:
    base = {"key": key, "title": title}
    if key == "tree":
        rows = tree_rows(value)
        if rows is not None:
            return base | {"kind": "tree", "rows": rows}
    if key == "script":
        if isinstance(value, str):
            return base | {"kind": "script", "text": value, "meta": []}
        if isinstance(value, Mapping):
            text = _first(value, _SCRIPT_KEYS)
            if text is not None:
                meta = {k: v for k, v in value.items() if k not in _SCRIPT_KEYS}
                return base | {"kind": "script", "text": _scalar(text), "meta": _kv(meta)}
    if isinstance(value, Mapping):
        tables = {}
        for k, v in value.items():
            table = _table(v) if isinstance(v, list | tuple) else None
            if table is not None:
                tables[k] = table
        rest = {k: v for k, v in value.items() if k not in tables}
        return base | {
            "kind": "kv",
            "pairs": _kv(rest),
            "tables": [{"title": str(k).replace("_", " "), **t} for k, t in tables.items()],
        }
    if isinstance(value, list | tuple):
        table = _table(value)
        if table is not None:
            return base | {"kind": "kv", "pairs": [], "tables": [{"title": "", **table}]}
    return base | {"kind": "generic", "view": generic(value)}


def context_sections(context: Any) -> list[dict[str, Any]]:
    """Report sections for a finding's context (known keys first, then any others)."""
    if not isinstance(context, Mapping):
        return (
            []
            if context in (None, "")
            else [
                {"key": "context", "title": "Context", "kind": "generic", "view": generic(context)}
            ]
        )
    known = dict(SECTIONS)
    order = [k for k, _ in SECTIONS if k in context] + [k for k in context if k not in known]
    sections = []
    for key in order:
        value = context[key]
        if _empty(value):
            continue
        title = known.get(key, str(key).replace("_", " ").capitalize())
        try:
            section = _section(key, title, value)
        except Exception:  # an unexpected shape is shown generically, never lost
            section = {"key": key, "title": title, "kind": "generic", "view": generic(value)}
        section["open"] = key in OPEN_SECTIONS
        sections.append(section)
    return sections
