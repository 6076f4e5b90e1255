"""The rubric's ``[gradescope]`` table: a daily submission limit, and the day it counts in.

    GradescopeRules                                  what the table sets
    parse_gradescope_rules(raw, source) -> GradescopeRules     strict: unknown keys refused
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.errors import GraderError
from grader.toml_table import checked_table

GRADESCOPE_KEYS = ("max_submissions_per_day", "time_zone")


@dataclass(frozen=True)
class GradescopeRules:
    """How ``grader gradescope`` treats a student's earlier submissions.

    Attributes:
        max_submissions_per_day: graded submissions a student may make per calendar day; one
            more is not graded and keeps the last score. None: no limit.
        time_zone: the IANA zone whose calendar day counts (``Asia/Shanghai``); None: the UTC
            offset of the submission's own ``created_at``, which Gradescope writes in the
            course's time zone.
    """

    max_submissions_per_day: int | None = None
    time_zone: str | None = None


def parse_gradescope_rules(raw: object, source: str) -> GradescopeRules:
    """The ``[gradescope]`` table of a rubric.

    Raises:
        GraderError: for a key it does not know, a limit that is not a whole number of at least 1,
            or a time zone this machine does not know.
    """
    raw = checked_table(raw, "gradescope", GRADESCOPE_KEYS, source=source,
                        hint="write [gradescope] with max_submissions_per_day = 3 below it")
    limit = raw.get("max_submissions_per_day")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise GraderError(f"{source}: [gradescope] max_submissions_per_day must be a whole number of at "
                          f"least 1, got {limit!r}", "e.g. max_submissions_per_day = 3; leave it out for no limit")
    zone = raw.get("time_zone")
    if zone is not None:
        if not isinstance(zone, str) or not zone.strip():
            raise GraderError(f"{source}: [gradescope] time_zone must be a zone name, got {zone!r}",
                              'e.g. time_zone = "Asia/Shanghai" or "America/New_York"')
        zone_info(zone, source)
    return GradescopeRules(max_submissions_per_day=limit, time_zone=zone)


def zone_info(name: str, source: str = "rubric"):
    """The ``zoneinfo.ZoneInfo`` of ``name``.

    Raises:
        GraderError: when this machine does not know the zone.
    """
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise GraderError(f"{source}: [gradescope] time_zone {name!r} is not a time zone this machine knows",
                          'use an IANA name such as "Asia/Shanghai", "Europe/London" or "UTC" '
                          "(where the system has no zone files: pip install tzdata)") from None
