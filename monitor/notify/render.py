"""Alert -> (title, body) in plain text, HTML or CommonMark (Apprise turns the latter
into Slack mrkdwn). Pure. Every piece of feed text is escaped for its format, so an
article title can never add markup, links, mentions or mail headers.

Total: any Alert renders in every format and time zone. Its text is tamed first
(``_tame``: no lone surrogates or control characters, bounded lengths, highlight spans
clipped to the snippet and merged when they overlap), and a time that the channel's
zone cannot show (year 1 west of UTC overflows) is shown in UTC.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from urllib.parse import quote, urlsplit

from monitor.config import TemplateSpec
from monitor.models import Alert, Snippet
from monitor.notify.story_text import batch_note, story_lines, tame_story, update_subject
from monitor.text import clean, one_line

Format = Literal["text", "html", "markdown"]
TITLE_LIMIT = 200
SNIPPET_LIMIT = 5000  # characters of a snippet shown (match makes ~300)
LINK_LIMIT = 4096  # a longer link is no link a person follows: none is shown
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BLANKS = str.maketrans("\r\t", "  ")  # one for one, so highlight offsets stay put
# What can change meaning inline: emphasis, code, links, images, autolinks/HTML, headings.
# Escaping more shows stray backslashes in Slack, where Apprise keeps unknown escapes.
_MD_SPECIAL = re.compile(r"([\\`*_~\[\]()<>#!])")


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message ready for Apprise."""

    title: str
    body: str
    format: Format


def render(alert: Alert, fmt: Format, tz: tzinfo, template: TemplateSpec | None = None) -> Rendered:
    """Render one alert for one channel format, through the channel's template if any."""
    alert = _tame(alert)
    if template is not None and (template.title or template.body):
        return _templated(alert, fmt, tz, template)
    title = subject(alert)
    if fmt == "html":
        return Rendered(title, _html(alert, tz), fmt)
    if fmt == "markdown":
        return Rendered(title, _markdown(alert, tz), fmt)
    return Rendered(title, _text(alert, tz), fmt)


def _templated(alert: Alert, fmt: Format, tz: tzinfo, template: TemplateSpec) -> Rendered:
    """Fill a user's template; every value is escaped for the format first."""
    default = render(alert, fmt, tz)
    plain = {
        "rules": _rules(alert),
        "feed": one_line(alert.feed),
        "title": one_line(alert.title or "(untitled)", 1000),
        "link": safe_link(alert.link) or "",
        "published": format_time(alert.published, tz),
    }
    title = (
        one_line(template.title.format(**plain, snippet=alert.snippet.text), TITLE_LIMIT)
        if template.title
        else default.title
    )
    if not template.body:
        return Rendered(title, default.body, fmt)
    if fmt == "html":
        values = {k: html.escape(v) for k, v in plain.items()}
        values["snippet"] = mark(alert.snippet, html.escape, "<mark>", "</mark>")
    elif fmt == "markdown":
        values = {k: (v if k == "link" else md_escape(v)) for k, v in plain.items()}
        values["snippet"] = mark(alert.snippet, md_escape, "**", "**")
    else:
        values = {**plain, "snippet": mark(alert.snippet, _verbatim, "«", "»")}
    return Rendered(title, template.body.format(**values), fmt)


def subject(alert: Alert) -> str:
    """One line: the rules that matched and the article title (no CR/LF, bounded); an
    update is ``Re:`` its story's first report."""
    rules = ", ".join(alert.rules[:50])
    update = update_subject(alert, rules)
    if update is not None:
        return one_line(update, TITLE_LIMIT)
    return one_line(f"[{rules}] {(alert.title or '(untitled)')[: TITLE_LIMIT * 4]}", TITLE_LIMIT)


def format_time(when: datetime, tz: tzinfo) -> str:
    """``2024-05-31 16:02 CEST``; in UTC when the zone cannot show it (the calendar's ends).

    A naive time is taken as UTC. Digits are written out, not left to strftime, which
    does not pad years before 1000 on every platform.
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        local = when.astimezone(tz)
        name = local.tzname() or ""
    except (OverflowError, ValueError, OSError):
        local, name = _utc(when), "UTC"
    stamp = f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"
    return f"{stamp} {one_line(name, 40)}".rstrip()


def _utc(when: datetime) -> datetime:
    """``when`` in UTC, clamped to the calendar (an aware time near year 1 or 9999 may not fit)."""
    try:
        return when.astimezone(UTC)
    except (OverflowError, ValueError):
        return datetime.min.replace(tzinfo=UTC) if when.year < 5000 else datetime.max.replace(tzinfo=UTC)


def safe_link(link: str | None) -> str | None:
    """Only http(s) links survive, with characters that could break markup quoted."""
    if not link:
        return None
    text = clean(link).strip()
    if len(text) > LINK_LIMIT:
        return None
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https"):
        return None
    return quote(text, safe=":/?#[]@!$&'*+,;=%~-._")


def mark(snippet: Snippet, escape: Callable[[str], str], before: str, after: str) -> str:
    """Escape the snippet text and wrap each highlight in before/after (spans are clipped
    to the text, sorted and merged, so any spans are safe)."""
    out, pos = [], 0
    for start, end in _spans(snippet.highlights, len(snippet.text)):
        out += [escape(snippet.text[pos:start]), before, escape(snippet.text[start:end]), after]
        pos = end
    out.append(escape(snippet.text[pos:]))
    return "".join(out)


def _spans(highlights: Sequence[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Highlights within [0, length], non-empty, in order, overlapping ones merged."""
    spans: list[tuple[int, int]] = []
    for start, end in sorted((max(0, min(a, length)), max(0, min(b, length))) for a, b in highlights):
        if end <= start:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def _tame(alert: Alert) -> Alert:
    """The alert with text every format can carry: see the module docstring."""
    snippet = alert.snippet
    text = clean(snippet.text[:SNIPPET_LIMIT], " ").translate(_BLANKS)
    return replace(
        alert,
        title=clean(alert.title[: TITLE_LIMIT * 10], " "),
        feed=clean(alert.feed[:1000], " "),
        link=safe_link(alert.link),
        rules=tuple(one_line(rule[:1000], 200) for rule in alert.rules[:50]),
        snippet=Snippet(text, tuple(_spans(snippet.highlights, len(text)))),
        story=tame_story(alert.story),
    )


def _rules(alert: Alert) -> str:
    return one_line(", ".join(alert.rules), 1000)


def _text(alert: Alert, tz: tzinfo) -> str:
    lines = [
        one_line(alert.title or "(untitled)", 1000),
        f"Feed: {one_line(alert.feed)}",
        f"Published: {format_time(alert.published, tz)}",
        f"Rules: {_rules(alert)}",
        *story_lines(alert),
    ]
    if alert.snippet.text:
        lines += ["", mark(alert.snippet, _verbatim, "«", "»")]
    link = safe_link(alert.link)
    if link:
        lines += ["", link]
    return "\n".join(lines)


def _verbatim(text: str) -> str:
    """Plain text needs no escaping (``_tame`` removed control characters)."""
    return text


def _html(alert: Alert, tz: tzinfo) -> str:
    esc = html.escape
    link = safe_link(alert.link)
    title = esc(one_line(alert.title or "(untitled)", 1000))
    heading = f'<a href="{esc(link, quote=True)}">{title}</a>' if link else title
    parts = [
        f'<h2 style="font-family:sans-serif;font-size:18px;margin:0 0 8px">{heading}</h2>',
        '<p style="font-family:sans-serif;color:#555;margin:0 0 12px">'
        f"{esc(one_line(alert.feed))} · {esc(format_time(alert.published, tz))}<br>"
        f"Matched: <b>{esc(_rules(alert))}</b>"
        + "".join(f"<br>{esc(line)}" for line in story_lines(alert))
        + "</p>",
    ]
    if alert.snippet.text:
        marked = mark(alert.snippet, esc, '<mark style="background:#ffe066">', "</mark>")
        parts.append(f'<blockquote style="font-family:serif;margin:0 0 12px">{marked}</blockquote>')
    if link:
        parts.append(
            f'<p style="font-family:sans-serif"><a href="{esc(link, quote=True)}">Read the article</a></p>'
        )
    return "\n".join(parts)


def md_escape(text: str) -> str:
    """Backslash-escape CommonMark punctuation (Apprise maps ``\\<`` to ``&lt;`` for Slack)."""
    return _MD_SPECIAL.sub(r"\\\1", text.replace("\n", " "))


def _markdown(alert: Alert, tz: tzinfo) -> str:
    link = safe_link(alert.link)
    title = md_escape(one_line(alert.title or "(untitled)", 1000))
    heading = f"**[{title}]({link})**" if link else f"**{title}**"
    lines = [
        heading,
        f"{md_escape(one_line(alert.feed))} · {md_escape(format_time(alert.published, tz))}",
        f"Matched: {md_escape(_rules(alert))}",
        *(md_escape(line) for line in story_lines(alert)),
    ]
    if alert.snippet.text:
        lines += ["", "> " + mark(alert.snippet, md_escape, "**", "**")]
    return "\n".join(lines)


BATCH_TITLES = {
    "digest": "Digest: {n} alert{s}",
    "summary": "{n} more alert{s} held back by the hourly limit",
}


def render_batch(alerts: Sequence[Alert], fmt: Format, tz: tzinfo, reason: str) -> Rendered:
    """Several alerts in one message, grouped by rule, newest first within each rule."""
    n = len(alerts)
    title = one_line(BATCH_TITLES.get(reason, "{n} alert{s}").format(n=n, s="" if n == 1 else "s"))
    groups: dict[str, list[Alert]] = {}
    for alert in map(_tame, alerts):
        for rule in alert.rules:
            groups.setdefault(rule, []).append(alert)
    for members in groups.values():
        members.sort(key=lambda a: _sort_key(a.published), reverse=True)
    section = {"html": _html_section, "markdown": _markdown_section}.get(fmt, _text_section)
    body = "\n\n".join(section(rule, members, tz) for rule, members in groups.items())
    return Rendered(title, body, fmt)


def _sort_key(when: datetime) -> timedelta:
    """Orders any mix of aware and naive (UTC) times without converting them (no overflow)."""
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)) - _EPOCH


def _line_parts(alert: Alert, tz: tzinfo) -> tuple[str, str, str | None]:
    return (
        one_line(alert.title or "(untitled)", 300),
        f"{one_line(alert.feed)}, {format_time(alert.published, tz)}{batch_note(alert)}",
        safe_link(alert.link),
    )


def _text_section(rule: str, alerts: Sequence[Alert], tz: tzinfo) -> str:
    lines = [f"{rule} ({len(alerts)})"]
    for alert in alerts:
        title, meta, link = _line_parts(alert, tz)
        lines.append(f"- {title} ({meta})" + (f"\n  {link}" if link else ""))
    return "\n".join(lines)


def _html_section(rule: str, alerts: Sequence[Alert], tz: tzinfo) -> str:
    esc = html.escape
    items = []
    for alert in alerts:
        title, meta, link = _line_parts(alert, tz)
        shown = f'<a href="{esc(link, quote=True)}">{esc(title)}</a>' if link else esc(title)
        items.append(f'<li>{shown} <span style="color:#555">({esc(meta)})</span></li>')
    return f"<h3>{esc(rule)} ({len(alerts)})</h3>\n<ul>\n" + "\n".join(items) + "\n</ul>"


def _markdown_section(rule: str, alerts: Sequence[Alert], tz: tzinfo) -> str:
    lines = [f"**{md_escape(rule)}** ({len(alerts)})"]
    for alert in alerts:
        title, meta, link = _line_parts(alert, tz)
        shown = f"[{md_escape(title)}]({link})" if link else md_escape(title)
        lines.append(f"- {shown} ({md_escape(meta)})")
    return "\n".join(lines)
