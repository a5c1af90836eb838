"""Investigation context: the joins that turn a finding into a story (see docs/context.md)."""
