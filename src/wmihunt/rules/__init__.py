"""Detection rules as Sigma files: the story's twelve (``story/*.yml``) and the user's own.

``load_story()`` compiles the packaged story; ``load_rules_dir(DIR)`` compiles a user's
folder and lists every rule it cannot run with the reason.
"""

from .loader import (
    STORY,
    USER,
    CompiledRule,
    Rejected,
    RuleSet,
    compile_rule,
    load_files,
    load_rules_dir,
    load_story,
    story_files,
)
from .meta import GroupField, RuleMeta

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
