"""wmihunt's fuzz targets, seed generator and runner (see docs/robustness.md).

Kept free of wmihunt imports, so the atheris engine can instrument wmihunt's modules
before they are first imported.
"""

#: Targets that read a whole input file through the readers and normalizers.
FILE_TARGETS = ("evtx", "xml", "jsonl", "json", "crowdstrike", "archive")
#: Every target: the file targets and ``normalize`` (RawEvent -> model row).
TARGETS = (*FILE_TARGETS, "normalize")
