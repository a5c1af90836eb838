"""Normalization: RawEvent -> one row of one model (see ``wmihunt.models``).

Public API:

- ``is_relevant(channel, event_id) -> bool``: the ``Relevance`` predicate readers use.
- ``normalize(event) -> tuple[str, dict] | None``: the model (table) name and the row,
  keyed by that model's column names (missing columns may be left out: they are NULL).
  ``None`` means "relevant channel, but nothing to model" (counted as skipped).
  Raises ``NormalizeError`` (with a human reason) for an event it must reject.
"""
