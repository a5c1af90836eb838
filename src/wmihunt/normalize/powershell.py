"""PowerShell script block logging 4104 -> ``script_block``.

Long scripts are split over several events (``MessageNumber`` of ``MessageTotal``, same
``ScriptBlockId``); each part is one row, kept whole, as upstream tests each part alone.
``user``/``user_id`` are the System ``Security/@UserID`` SID: 4104 names no account itself.
"""

from __future__ import annotations

from typing import Any

from ..events import RawEvent
from .common import Fields
from .fields import opt


def powershell_4104(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    row.update(
        script_block_text=f.text("ScriptBlockText"),
        script_block_id=opt(f.text("ScriptBlockId")),
        message_number=f.int("MessageNumber", bits=32),
        message_total=f.int("MessageTotal", bits=32),
        path=opt(f.text("Path")),
    )
