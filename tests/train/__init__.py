"""Shared material of the grader.train tests (tests/test_train*.py)."""
