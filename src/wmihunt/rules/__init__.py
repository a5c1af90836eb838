"""Detection rules as Sigma files: the story's twelve (``story/*.yml``) and the user's own.

``load_story()`` compiles the packaged story; ``load_rules_dir(DIR)`` compiles a user's
folder and lists every rule it cannot run with the reason. ``compile_rule`` (pySigma) is
imported on first use.
"""

from typing import Any

from .compiled import STORY, USER, CompiledRule, Rejected, RuleSet
from .loader import load_files, load_rules_dir, load_story, story_files
from .meta import GroupField, RuleMeta


def __getattr__(name: str) -> Any:
    if name == "compile_rule":
        from .compiler import compile_rule

        return compile_rule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "STORY",
    "USER",
    "CompiledRule",
    "GroupField",
    "Rejected",
    "RuleMeta",
    "RuleSet",
    "compile_rule",
    "load_files",
    "load_rules_dir",
    "load_story",
    "story_files",
]
