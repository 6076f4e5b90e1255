"""Grades in the formats of the platforms courses grade on (Gradescope)."""
