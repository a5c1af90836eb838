"""``python -m wmihunt``."""

from .cli import run

run()
