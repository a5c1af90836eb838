"""PowerShell 4104 script blocks joined from their parts: one SQL relation.

PowerShell splits a long script block over several 4104 events with the same
``ScriptBlockId`` (``MessageNumber`` of ``MessageTotal``). Detection (matching across a
part boundary) and context (showing the whole script) both read this relation, so it
lives below both of them.
"""

from __future__ import annotations

#: One row per script block, shaped like ``script_block`` (the first part's identity and
#: evidence, the whole text) plus ``parts``, ``part_numbers``, ``part_uids``,
#: ``missing_count``, ``complete``, ``first_time``, ``last_time``.
REASSEMBLED_SQL = """
WITH parts AS (
    SELECT DISTINCT ON (lower(dest), coalesce(script_block_id, uid), message_number) *,
           coalesce(script_block_id, uid) AS _block
    FROM script_block
    ORDER BY lower(dest), coalesce(script_block_id, uid), message_number, time, uid
),
blocks AS (
    SELECT
        min_by(uid, coalesce(message_number, 0)) AS uid,
        min(time) AS time,
        min_by(dest, coalesce(message_number, 0)) AS dest,
        min_by("user", coalesce(message_number, 0)) AS "user",
        min_by(user_id, coalesce(message_number, 0)) AS user_id,
        min_by(data_source, coalesce(message_number, 0)) AS data_source,
        string_agg(coalesce(script_block_text, ''), '' ORDER BY message_number)
            AS script_block_text,
        any_value(script_block_id) AS script_block_id,
        min(message_number) AS message_number,
        max(message_total) AS message_total,
        min_by(path, coalesce(message_number, 0)) AS path,
        min_by(channel, coalesce(message_number, 0)) AS channel,
        min_by(event_id, coalesce(message_number, 0)) AS event_id,
        min_by(provider, coalesce(message_number, 0)) AS provider,
        min_by(ev_file, coalesce(message_number, 0)) AS ev_file,
        min_by(ev_member, coalesce(message_number, 0)) AS ev_member,
        min_by(ev_record_id, coalesce(message_number, 0)) AS ev_record_id,
        min_by(ev_line, coalesce(message_number, 0)) AS ev_line,
        count(*) AS parts,
        list(message_number ORDER BY message_number) AS part_numbers,
        list(uid ORDER BY message_number) AS part_uids,
        count(DISTINCT message_number)
            FILTER (WHERE message_number BETWEEN 1 AND message_total) AS _in_range,
        min(time) AS first_time,
        max(time) AS last_time
    FROM parts
    GROUP BY lower(dest), _block
)
SELECT * EXCLUDE (_in_range),
       greatest(coalesce(message_total, parts) - _in_range, 0) AS missing_count,
       (message_total IS NOT NULL AND _in_range = message_total) AS complete
FROM blocks
"""

#: Columns the reassembly adds to the ``script_block`` shape.
EXTRA_COLUMNS = (
    "parts", "part_numbers", "part_uids", "missing_count", "complete", "first_time", "last_time",
)
