"""Alert -> (title, body) in plain text, HTML or CommonMark (Apprise turns the latter
into Slack mrkdwn). Pure. Every piece of feed text is escaped for its format, so an
article title can never add markup, links, mentions or mail headers.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from monitor.models import Alert, Snippet
from monitor.text import one_line

Format = Literal["text", "html", "markdown"]
TITLE_LIMIT = 200
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~&\"'=:@$%^])")


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message ready for Apprise."""

    title: str
    body: str
    format: Format


def render(alert: Alert, fmt: Format, tz: ZoneInfo) -> Rendered:
    """Render one alert for one channel format."""
    title = subject(alert)
    if fmt == "html":
        return Rendered(title, _html(alert, tz), fmt)
    if fmt == "markdown":
        return Rendered(title, _markdown(alert, tz), fmt)
    return Rendered(title, _text(alert, tz), fmt)


def subject(alert: Alert) -> str:
    """One line: the rules that matched and the article title (no CR/LF, bounded)."""
    rules = ", ".join(alert.rules)
    return one_line(f"[{rules}] {alert.title or '(untitled)'}", TITLE_LIMIT)


def format_time(when: datetime, tz: ZoneInfo) -> str:
    """``2024-05-31 16:02 CEST``."""
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def safe_link(link: str | None) -> str | None:
    """Only http(s) links survive, with characters that could break markup quoted."""
    if not link:
        return None
    try:
        scheme = urlsplit(link.strip()).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https"):
        return None
    return quote(link.strip(), safe=":/?#[]@!$&'*+,;=%~-._")


def mark(snippet: Snippet, escape: Callable[[str], str], before: str, after: str) -> str:
    """Escape the snippet text and wrap each highlight in before/after."""
    out, pos = [], 0
    for start, end in snippet.highlights:
        out += [escape(snippet.text[pos:start]), before, escape(snippet.text[start:end]), after]
        pos = end
    out.append(escape(snippet.text[pos:]))
    return "".join(out)


def _text(alert: Alert, tz: ZoneInfo) -> str:
    lines = [
        one_line(alert.title or "(untitled)", 1000),
        f"Feed: {one_line(alert.feed)}",
        f"Published: {format_time(alert.published, tz)}",
        f"Rules: {', '.join(alert.rules)}",
    ]
    if alert.snippet.text:
        lines += ["", mark(alert.snippet, _verbatim, "«", "»")]
    link = safe_link(alert.link)
    if link:
        lines += ["", link]
    return "\n".join(lines)


def _verbatim(text: str) -> str:
    """Plain text needs no escaping (control characters were removed when parsed)."""
    return text


def _html(alert: Alert, tz: ZoneInfo) -> str:
    esc = html.escape
    link = safe_link(alert.link)
    title = esc(one_line(alert.title or "(untitled)", 1000))
    heading = f'<a href="{esc(link, quote=True)}">{title}</a>' if link else title
    parts = [
        f'<h2 style="font-family:sans-serif;font-size:18px;margin:0 0 8px">{heading}</h2>',
        '<p style="font-family:sans-serif;color:#555;margin:0 0 12px">'
        f"{esc(one_line(alert.feed))} · {esc(format_time(alert.published, tz))}<br>"
        f"Matched: <b>{esc(', '.join(alert.rules))}</b></p>",
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


def _markdown(alert: Alert, tz: ZoneInfo) -> str:
    link = safe_link(alert.link)
    title = md_escape(one_line(alert.title or "(untitled)", 1000))
    heading = f"**[{title}]({link})**" if link else f"**{title}**"
    lines = [
        heading,
        f"{md_escape(one_line(alert.feed))} · {md_escape(format_time(alert.published, tz))}",
        f"Matched: {md_escape(', '.join(alert.rules))}",
    ]
    if alert.snippet.text:
        lines += ["", "> " + mark(alert.snippet, md_escape, "**", "**")]
    return "\n".join(lines)
