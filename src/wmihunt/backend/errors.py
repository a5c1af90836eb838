"""Why a rule cannot be compiled: a category (for counting) and a human detail."""

from __future__ import annotations

from sigma.exceptions import SigmaError

LOGSOURCE_NOT_MODELLED = "log source not modelled"
UNKNOWN_FIELD = "unknown field"
UNSUPPORTED = "unsupported modifier or feature"
KEYWORDS = "keyword search not supported"
REGEX = "regular expression not supported by the engine"
INVALID = "invalid rule"
RULE_TYPE = "unsupported rule type"


class RuleRejected(SigmaError):
    """Raised by the pipeline or the backend; the loader records it with the rule's file."""

    def __init__(self, category: str, detail: str) -> None:
        super().__init__(f"{category}: {detail}")
        self.category = category
        self.detail = detail
