"""Process starts -> ``process_start``: Sysmon 1, Security 4688, CrowdStrike
ProcessRollup2 / SyntheticProcessRollup2 (field mapping: DETECTIONS.md section 2).

``user`` on Security 4688 is the *subject* (the account that created the process:
``SubjectDomainName\\SubjectUserName``, falling back to ``SubjectUserSid``), as upstream
Splunk does; ``target_user`` is ``TargetDomainName\\TargetUserName`` (the account the new
process runs as, Windows 10+), left NULL when Windows wrote ``-``. For a process that
WmiPrvSE.exe starts on behalf of a remote caller, the subject is the WmiPrvSE host account
and ``target_user``/``target_logon_id`` name the caller: detections score ``user`` like
upstream, context can show both.

A command line that is present but empty stays ``""``; a missing one is NULL.
"""

from __future__ import annotations

from typing import Any

from ..events import RawEvent
from .common import Fields, set_user
from .fields import basename, is_sid, join_account, opt, opt_sid, parse_int, parse_time


def sysmon_1(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    """``time`` is Sysmon's own ``UtcTime`` (``Source.time_field``), else the System time."""
    set_user(row, opt(f.text("User")))
    image = f.text("Image")
    parent_image = f.text("ParentImage")
    row.update(
        process=f.text("CommandLine"),
        process_path=image,
        process_name=basename(image),
        original_file_name=opt(f.text("OriginalFileName")),
        process_id=f.int("ProcessId"),
        process_guid=opt(f.text("ProcessGuid")),
        parent_process=f.text("ParentCommandLine"),
        parent_process_path=parent_image,
        parent_process_name=basename(parent_image),
        parent_process_id=f.int("ParentProcessId"),
        parent_process_guid=opt(f.text("ParentProcessGuid")),
        logon_id=opt(f.text("LogonId")),
        integrity_level=opt(f.text("IntegrityLevel")),
        current_directory=opt(f.text("CurrentDirectory")),
        hashes=opt(f.text("Hashes")),
    )


def security_4688(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    """Both shapes: Windows 10+ (``ParentProcessName``, Target*, ``MandatoryLabel``) and
    2008R2/2012 (none of those, sometimes no ``CommandLine``). Ids are hex text."""
    sid = opt_sid(f.text("SubjectUserSid"))
    user = join_account(f.text("SubjectDomainName"), f.text("SubjectUserName")) or sid
    set_user(row, user, sid if is_sid(sid) else None)
    image = f.text("NewProcessName")
    parent_path = opt(f.text("ParentProcessName"))
    target_logon = opt(f.text("TargetLogonId"))
    if parse_int(target_logon) == 0:  # 0x0: no target account (pre-Win10 semantics)
        target_logon = None
    row.update(
        process=f.text("CommandLine"),
        process_path=image,
        process_name=basename(image),
        process_id=f.int("NewProcessId"),
        parent_process_path=parent_path,
        parent_process_name=basename(parent_path),
        parent_process_id=f.int("ProcessId"),
        logon_id=opt(f.text("SubjectLogonId")),
        target_user=join_account(f.text("TargetDomainName"), f.text("TargetUserName")),
        target_logon_id=target_logon,
        integrity_level=opt(f.text("MandatoryLabel")),
        token_elevation_type=opt(f.text("TokenElevationType")),
    )


#: Falcon hash fields, in Sysmon's ``Hashes`` order; all-zero values mean "not computed".
_CS_HASHES = (("MD5", "MD5HashData"), ("SHA1", "SHA1HashData"), ("SHA256", "SHA256HashData"))


def crowdstrike_process(event: RawEvent, f: Fields, row: dict[str, Any]) -> None:
    """(Synthetic)ProcessRollup2. ``ParentProcessId``/``TargetProcessId`` are Falcon ids
    (they link child to parent), not OS pids, so they go to the *_guid columns."""
    when = parse_time(f.get("timestamp")) or parse_time(f.get("ProcessStartTime"))
    if when is not None:
        row["time"] = when
    row["dest"] = (
        opt(f.text("ComputerName"))
        or opt(f.text("aid_computer_name"))
        or event.computer
        or opt(f.text("aid"))
    )
    sid = opt_sid(f.text("UserSid"))
    set_user(row, opt(f.text("UserName")) or sid, sid)
    image = f.text("ImageFileName")
    hashes = [
        f"{label}={value}"
        for label, key in _CS_HASHES
        if (value := opt(f.text(key))) and value.strip("0")
    ]
    row.update(
        process=f.text("CommandLine"),
        process_path=image,
        process_name=basename(image),
        process_id=f.int("RawProcessId"),
        process_guid=opt(f.text("TargetProcessId")),
        parent_process_name=opt(f.text("ParentBaseFileName")),
        parent_process_guid=opt(f.text("ParentProcessId")),
        logon_id=opt(f.text("AuthenticationId")),
        integrity_level=opt(f.text("IntegrityLevel")),
        hashes=",".join(hashes) or None,
    )
