"""Rubric files shipped with the grader (``default.toml``: the homework's own assertions)."""
