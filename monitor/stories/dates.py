"""Calendar dates an article states, and how far apart two sets of dates lie.

Read: ``September 17, 2013``, ``Sept. 18``, ``Sep 19 2012``, ``Dec.14``, ``18th September
2013``, ``15 of May``, ``2013-09-26``. Month names are English (their first letter
capitalised, so ``may`` the verb is no month); other languages state no date here and
lose nothing else. A date without a year takes the year that puts it nearest the
publication date (news speaks of the days around it); without a publication date it
stays a month and a day.

Dates travel as number terms of the signature (ISO 8601 forms: ``2013-09-17``, and
``--12-14`` for a month and day without a year), so a story keeps them in its numbers
centroid and its persisted row does not change shape. Weekdays (``on Tuesday``) are
not read: resolved against the publication date they land within six days of it, which
the publication date already says at the tolerance used (``DATE_SLACK``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime

MAX_DATES = 16
_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MONTH = (
    r"(?P<m>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_YEAR = r"(?:,?\s*(?P<y>(?:19|20)\d\d)(?![\d-]))?"
_DAY = r"(?P<d>[0-3]?\d)(?:st|nd|rd|th)?(?!\d)"
_MONTH_DAY = re.compile(rf"(?<!\w){_MONTH}\b\.?\s*{_DAY}{_YEAR}")
_DAY_MONTH = re.compile(rf"(?<![\w.,]){_DAY}\s+(?:of\s+)?{_MONTH}\b\.?{_YEAR}")
_ISO = re.compile(r"(?<![\w-])(?P<y>(?:19|20)\d\d)-(?P<m>[01]\d)-(?P<d>[0-3]\d)(?![\w-])")
_MONTH_HINT = re.compile(r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")  # cheap first look
_ISO_HINT = re.compile(r"(?:19|20)\d\d-[01]\d-[0-3]\d")
_REACH = 24  # characters around a month name that a day and a year can take
_TERM = re.compile(r"(\d{4}|-)-(\d\d)-(\d\d)")
DATE_TERM = re.compile(r"(?:\d{4}|-)-\d\d-\d\d")
"""A number term that is a date (``2013-09-17`` or ``--12-14``)."""

DATE_SLACK = 14  # days apart that still agree: a report's dates cluster around its event
DATE_SPAN = 60  # ... and this many more make a full conflict


def date_terms(text: str, published: datetime | None) -> list[str]:
    """The dates stated in ``text`` as ISO terms, in order of appearance, at most MAX_DATES
    (pure; any text, never raises)."""
    found: dict[int, str] = {}
    for hint in _MONTH_HINT.finditer(text):  # the full patterns only near a month's name
        at = hint.start()
        for match in (
            _MONTH_DAY.match(text, at, at + _REACH),
            _DAY_MONTH.search(text, max(0, at - 8), at + _REACH),
        ):
            if match is not None and match.start("m") == at:
                _found(found, match, published)
    for hint in _ISO_HINT.finditer(text):
        _found(found, _ISO.match(text, hint.start(), hint.end() + 1), published)
    return [term for _, term in sorted(found.items())[:MAX_DATES]]


def _found(found: dict[int, str], match: re.Match[str] | None, published: datetime | None) -> None:
    """Keep the term of a match, by where it starts."""
    term = None if match is None else _term(match, published)
    if match is not None and term is not None:
        found.setdefault(match.start(), term)


def _term(match: re.Match[str], published: datetime | None) -> str | None:
    """One match as a term, or None when it names no real day."""
    raw_month, day, year = match["m"], int(match["d"]), match["y"]
    month = int(raw_month) if raw_month.isdigit() else _MONTHS[raw_month[:3].lower()]
    if year is not None:
        return _iso(int(year), month, day)
    if not _valid(2000, month, day):  # 2000 is a leap year: 29 February stays possible
        return None
    near = published.date() if published is not None else None
    years = () if near is None else (near.year - 1, near.year, near.year + 1)
    options = [date(y, month, day) for y in years if _valid(y, month, day)]
    if near is None or not options:  # undated, or 29 February with no leap year near
        return f"--{month:02d}-{day:02d}"
    return min(options, key=lambda d: (abs((d - near).days), d)).isoformat()


def _valid(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _iso(year: int, month: int, day: int) -> str | None:
    return date(year, month, day).isoformat() if _valid(year, month, day) else None


def parse_term(term: str) -> tuple[int | None, int, int] | None:
    """A date term back as (year or None, month, day); None for any other term."""
    match = _TERM.fullmatch(term)
    if match is None:
        return None
    year, month, day = match.groups()
    if not _valid(2000 if year == "-" else int(year), int(month), int(day)):
        return None
    return (None if year == "-" else int(year)), int(month), int(day)


def day_gap(
    ours: Iterable[tuple[int | None, int, int]], theirs: Iterable[tuple[int | None, int, int]]
) -> int | None:
    """Fewest days between a date of ``ours`` and one of ``theirs`` (a date without a year
    is compared on the calendar, wrapping at the year's end); None when a side has none."""
    mine, other = list(ours), list(theirs)
    if not mine or not other:
        return None
    return min(_apart(a, b) for a in mine for b in other)


def _apart(a: tuple[int | None, int, int], b: tuple[int | None, int, int]) -> int:
    if a[0] is not None and b[0] is not None:
        return abs((date(a[0], a[1], a[2]) - date(b[0], b[1], b[2])).days)
    gap = abs((date(2000, a[1], a[2]) - date(2000, b[1], b[2])).days)
    return min(gap, 366 - gap)


def date_conflict(gap: int | None) -> float:
    """0 within DATE_SLACK days (or with nothing to compare), rising to 1 DATE_SPAN days later."""
    if gap is None:
        return 0.0
    return min(1.0, max(0.0, (gap - DATE_SLACK) / DATE_SPAN))
