"""Logons, for context -> ``logon``: Security 4624 and 4648.

``user`` is the account being authenticated: 4624's new logon (``Target*``) and, for
4648, the account whose credentials were used (``Target*``); ``subject_user`` is the
account that asked. ``-`` placeholders (no IP, no workstation, no process) become NULL.
"""

from __future__ import annotations

from typing import Any

from ..events import RawEvent
from .common import Fields, set_user
from .fields import join_account, opt, opt_sid


def _common(f: Fields, row: dict[str, Any]) -> None:
    target = join_account(f.text("TargetDomainName"), f.text("TargetUserName"))
    row.update(
        target_user=target,
        subject_user=join_account(f.text("SubjectDomainName"), f.text("SubjectUserName")),
        subject_logon_id=opt(f.text("SubjectLogonId")),
        src_ip=opt(f.text("IpAddress")),
        src_port=f.int("IpPort", bits=32),
        process_name=opt(f.text("ProcessName")),
        process_id=f.int("ProcessId"),
    )


def security_4624(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    _common(f, row)
    sid = opt_sid(f.text("TargetUserSid"))
    set_user(row, row["target_user"] or sid, sid)
    logon_process = opt(f.text("LogonProcessName"))
    row.update(
        logon_type=f.int("LogonType", bits=32),
        target_user_sid=sid,
        target_logon_id=opt(f.text("TargetLogonId")),
        src_workstation=opt(f.text("WorkstationName")),
        logon_process=logon_process.strip() if logon_process else None,  # "Advapi  "
        auth_package=opt(f.text("AuthenticationPackageName")),
    )


def security_4648(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    _common(f, row)
    set_user(row, row["target_user"])
    row.update(
        target_server=opt(f.text("TargetServerName")),
        target_info=opt(f.text("TargetInfo")),
    )
