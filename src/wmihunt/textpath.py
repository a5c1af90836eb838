"""File and member names as valid text.

A name that is not valid UTF-8 on disk (a planted file, a foreign tar) reaches Python with
its bad bytes as lone surrogates (``surrogateescape``); such a string cannot be written to
JSON, Arrow or DuckDB. Inputs are opened by their real name, but every name the scan
stores or prints is this text form: each bad byte as ``\\xNN``.
"""

from __future__ import annotations


def text_path(name: str) -> str:
    """``name`` if it is valid text, else with each undecodable byte as ``\\xNN``."""
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate that is no escaped byte
            return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return name


__all__ = ["text_path"]
