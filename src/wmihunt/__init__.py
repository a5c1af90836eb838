"""wmihunt: find suspicious WMI use in Windows telemetry, with the context to judge it."""

__version__ = "0.1.0"
