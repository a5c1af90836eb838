"""DuckDB's memory while worker results load (``ingest.case``, ``store.memory_limit``):
bounded between transactions, with room for the transaction in progress, and an
in-memory case offloaded to a private temporary folder, never to the working directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from wmihunt import ingest, scratch, store
from wmihunt.ingest import case as case_module

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "logs"


def _sysmon_1_lines(n: int, command_chars: int) -> bytes:
    """``n`` Winlogbeat Sysmon 1 events: the sample's first one, renumbered, each with a
    command line of ``command_chars`` characters."""
    line = next(
        ln for ln in (SAMPLES / "srv01_winlogbeat.jsonl").read_text().splitlines()
        if '"code": "1"' in ln and "record_id" in ln
    )  # fmt: skip
    import json

    event = json.loads(line)
    out = []
    for i in range(n):
        event["winlog"]["record_id"] = i + 1
        event["winlog"]["event_data"]["ProcessId"] = str(1000 + i)
        event["winlog"]["event_data"]["CommandLine"] = f"cmd.exe /c {i} " + "x" * command_chars
        out.append(json.dumps(event))
    return ("\n".join(out) + "\n").encode()


def test_a_batch_larger_than_the_loading_limit_still_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Between transactions DuckDB is held to LOADING_MEMORY, but inserting a batch needs
    memory for the batch (DuckDB allocates a column of a spilled batch in one block), so
    the limit of a transaction has room for its data. Here one input of 60,000 process
    starts is spilled by its worker in a batch of 50,000 (the default ``BATCH_ROWS``),
    whose command lines alone take 18 MB: under the bare 16 MB base limit DuckDB fails
    ("could not allocate block of size 18.1 MiB")."""
    monkeypatch.setattr(case_module, "LOADING_MEMORY", 16 << 20)
    big = tmp_path / "big.jsonl"
    big.write_bytes(_sysmon_1_lines(60_000, 300))
    small = SAMPLES / "ws01_sysmon.xml"  # a second input: two inputs, two workers
    alone = store.connect(None)
    ingest.ingest_paths([str(small)], alone, workers=1)
    expected = 60_000 + ingest.table_counts(alone)["process_start"]
    con = store.connect(None)
    stats = ingest.ingest_paths([str(big), str(small)], con, workers=2)
    assert ingest.table_counts(con)["process_start"] == expected
    assert stats.rows_added >= expected
    # the default limit is back once loading is done
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.endswith("GiB")
    con.close()
    alone.close()


def test_an_in_memory_case_offloads_to_a_private_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not DuckDB's default ``.tmp`` in the analyst's working directory: a scratch
    folder named for this process (swept if the scan is killed), gone after close."""
    monkeypatch.chdir(tmp_path)
    con = store.connect(None)
    (folder,) = con.execute("SELECT current_setting('temp_directory')").fetchone()
    assert Path(folder).parent == Path(tempfile.gettempdir())
    assert Path(folder).name.startswith(f"{scratch.PREFIX}{os.getpid()}-duckdb-")
    # more rows than the memory limit holds: some go to the folder
    con.execute("SET memory_limit = '16MB'")
    con.execute("CREATE TABLE t AS SELECT repeat('x', 200) || i AS s FROM range(300000) r(i)")
    assert con.execute("SELECT count(*) FROM t").fetchone() == (300_000,)
    used: Any = con.execute("SELECT sum(size) FROM duckdb_temporary_files()").fetchone()[0]
    assert used and used > 0
    con.close()
    assert not Path(folder).exists()
    assert not (tmp_path / ".tmp").exists()


def test_memory_limit_lowers_for_a_while_and_never_raises() -> None:
    con = store.connect(None)

    def limit() -> str:
        return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]

    default = limit()
    with store.memory_limit(con, 64 << 20):
        assert limit() == "64.0 MiB"
    assert limit() == default
    with store.memory_limit(con, 1 << 50):  # a huge group's room: the default stays
        assert limit() == default
    with pytest.raises(RuntimeError), store.memory_limit(con, 32 << 20):
        raise RuntimeError("a failed load still restores the limit")
    assert limit() == default
    con.close()
