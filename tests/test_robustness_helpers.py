"""Helpers for the robustness tests (no tests here): project inputs, bombs, invariants."""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the fuzz package lives at the repository root
    sys.path.insert(0, str(ROOT))

from fuzz.evtxgen import evtx_from_xml  # noqa: E402
from fuzz.targets import Outcome, check_entries, run_file  # noqa: E402
from wmihunt.accounting import FileStats  # noqa: E402

SAMPLES = ROOT / "samples" / "logs"
CORPUS = ROOT.parent / "shared" / "corpus"
MIB = 1 << 20

__all__ = [
    "CORPUS",
    "ROOT",
    "SAMPLES",
    "check_entries",
    "evtx_from_xml",
    "invariants",
    "sample_evtx",
    "write_deflate_bomb_zip",
]


def sample_evtx(name: str = "ws01_security", first_record: int = 1) -> bytes:
    """A sample XML log written as EVTX by the project's own writer (fuzz/evtxgen.py)."""
    return evtx_from_xml((SAMPLES / f"{name}.xml").read_bytes(), first_record)


def invariants(path: str | Path) -> Outcome:
    """Read ``path`` as a scan does and assert every fuzz invariant (fuzz/targets.py)."""
    return run_file(path)


def reasons(stats: FileStats) -> list[str]:
    return [e["reason"] for e in stats.errors]


# -- a deflate bomb, written as a stream --------------------------------------------------
def _gf2_times(matrix: list[int], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B) (zlib's crc32_combine)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << i for i in range(31)]  # operator for one zero bit
    even = [_gf2_times(odd, odd[n]) for n in range(32)]  # two zero bits
    odd = [_gf2_times(even, even[n]) for n in range(32)]  # four zero bits
    while True:
        even = [_gf2_times(odd, odd[n]) for n in range(32)]
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = [_gf2_times(even, even[n]) for n in range(32)]
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _repeated(crc_block: int, block: int, count: int) -> int:
    """CRC-32 of ``count`` copies of a block whose CRC is ``crc_block``."""
    result, length = 0, 0
    power, power_len = crc_block, block
    while count:
        if count & 1:
            result = crc32_combine(result, power, power_len) if length else power
            length += power_len
        power = crc32_combine(power, power, power_len)
        power_len *= 2
        count >>= 1
    return result


def _bomb_stream(prefix: bytes, blocks: int) -> Iterator[bytes]:
    """Raw deflate of ``prefix`` + ``blocks`` MiB of zeros, without compressing them all:
    after a full flush the compressor starts afresh, so every MiB of zeros compresses to
    the same bytes, which are written ``blocks`` times."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    yield comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(MIB)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    assert block == again, "deflate output of a zero block is not reproducible"
    for _ in range(blocks):
        yield block
    yield comp.flush(zlib.Z_FINISH)


def write_deflate_bomb_zip(path: Path, name: str, prefix: bytes, zero_mib: int) -> tuple[int, int]:
    """Write a valid ZIP64 archive whose one member is ``prefix`` + ``zero_mib`` MiB of
    zeros, streaming (a few MiB on disk for GiBs expanded). Returns (compressed size,
    expanded size)."""
    expanded = len(prefix) + zero_mib * MIB
    crc = crc32_combine(zlib.crc32(prefix), _repeated(zlib.crc32(bytes(MIB)), MIB, zero_mib),
                        zero_mib * MIB)  # fmt: skip
    raw_name = name.encode()
    zip64 = struct.pack("<HHQQ", 1, 16, expanded, 0)  # compressed size patched below
    with open(path, "wb") as out:
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0x21, crc,
                            0xFFFFFFFF, 0xFFFFFFFF, len(raw_name), len(zip64))  # fmt: skip
        out.write(local + raw_name + zip64)
        start = out.tell()
        for piece in _bomb_stream(prefix, zero_mib):
            out.write(piece)
        compressed = out.tell() - start
        out.seek(start - 8)  # the zip64 compressed size in the local header
        out.write(struct.pack("<Q", compressed))
        out.seek(0, 2)
        central_at = out.tell()
        extra = struct.pack("<HHQQ", 1, 16, expanded, compressed)
        central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0x21, crc,
                              0xFFFFFFFF, 0xFFFFFFFF, len(raw_name), len(extra), 0, 0, 0, 0,
                              0)  # fmt: skip
        out.write(central + raw_name + extra)
        central_size = out.tell() - central_at
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, central_size, central_at, 0))
    return compressed, expanded
