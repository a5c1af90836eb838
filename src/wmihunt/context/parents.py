"""Parent reconstruction for old Security 4688 events (a post-ingest step).

Windows before 10/2016 writes 4688 without ``ParentProcessName``: only the creator's pid
(``ProcessId``, our ``parent_process_id``). The parent is then the most recent earlier
process start on the same host whose pid equals that value. Windows reuses pids, so the
*most recent earlier* start wins and a start logged after the child never counts. What
this cannot see: a parent that started before logging began (then an older process with
the same pid may be picked), and a parent that exited before a new one reused its pid
without a 4688 for the newcomer (lost or filtered events).
"""

from __future__ import annotations

import duckdb

#: Sources whose process_id is an OS pid comparable with 4688's (CrowdStrike rows have no
#: OS parent pid, so they never need inference, but they can be parents).
PID_SOURCES = ("security", "sysmon", "crowdstrike")

_INFER_SQL = f"""
UPDATE process_start AS c
SET parent_process_path = m.process_path,
    parent_process_name = m.process_name,
    parent_inferred = true
FROM (
    WITH ch AS (
        SELECT rowid AS rid, uid, lower(dest) AS host, parent_process_id, time
        FROM process_start
        WHERE data_source = 'security'
          AND parent_process_path IS NULL
          AND parent_process_id IS NOT NULL
          AND time IS NOT NULL
    )
    SELECT ch.rid, par.process_path, par.process_name
    FROM ch
    ASOF JOIN (
        -- only starts whose host and pid some child names: the join's sorted side then
        -- holds a few rows instead of every process start of the case
        SELECT uid, lower(dest) AS host, process_id, time, process_path, process_name
        FROM process_start
        WHERE process_id IS NOT NULL AND time IS NOT NULL
          AND data_source IN {PID_SOURCES!r}
          AND (lower(dest), process_id) IN (SELECT (host, parent_process_id) FROM ch)
    ) AS par
      ON ch.host = par.host AND ch.parent_process_id = par.process_id AND ch.time >= par.time
    WHERE par.uid <> ch.uid AND par.process_path IS NOT NULL
) AS m
WHERE c.rowid = m.rid
"""


def infer_parents(con: duckdb.DuckDBPyConnection) -> int:
    """Fill the parent of old-shape 4688 rows from the earlier start of their parent pid.

    One set-based UPDATE (an ASOF join per host and pid). Returns the rows filled; running
    it again fills nothing new. Run it after ingest and before detection, so detection 3
    ("parent is WmiPrvSE.exe") fires on the reconstructed parent, marked ``parent_inferred``.
    """
    result = con.execute(_INFER_SQL).fetchone()
    return int(result[0]) if result else 0
