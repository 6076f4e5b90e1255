"""Grades in the formats of the platforms courses grade on: Gradescope, PrairieLearn, GitHub
Classroom, and the Canvas and Moodle gradebooks (pure formatting; the commands are in
grader.commands)."""
