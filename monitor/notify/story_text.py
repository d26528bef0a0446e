"""What a message says about its story, as plain text lines the renderer escapes per
format: the story's first report, how many outlets have reported it so far, and for an
update (a later report of a story the channel was alerted about) who reported it.
Pure; every value is tamed (control characters out, lengths bounded) here."""

from __future__ import annotations

from dataclasses import replace

from monitor.models import Alert, StoryRef
from monitor.text import clean, one_line


def tame_story(story: StoryRef | None) -> StoryRef | None:
    """The story's texts made safe to show in any format (they come from feeds)."""
    if story is None:
        return None
    return replace(
        story,
        first_title=one_line(clean(story.first_title[:4000], " "), 300),
        first_feed=one_line(clean(story.first_feed[:1000], " "), 200),
        also=tuple(one_line(clean(feed[:1000], " "), 200) for feed in story.also[:10]),
    )


def outlets(n: int) -> str:
    """``1 outlet``, ``3 outlets``."""
    return f"{n} outlet{'' if n == 1 else 's'}"


def story_lines(alert: Alert) -> list[str]:
    """Plain lines about the alert's story (none without one)."""
    story = alert.story
    if story is None:
        return []
    so_far = f"{outlets(story.outlets)} so far"
    if alert.kind == "update":
        lines = [f"Also reported by {one_line(alert.feed)}: {one_line(alert.title, 300)}"]
        if story.also:
            lines.append(f"Latest reports: {', '.join(dict.fromkeys(story.also))}")
        return [*lines, f"Story: {story.first_title} (first: {story.first_feed}; {so_far})"]
    if story.articles <= 1:
        return [f"Story: first report ({so_far})"]
    return [f"Story: first reported by {story.first_feed}: {story.first_title} ({so_far})"]


def update_subject(alert: Alert, rules: str) -> str | None:
    """The subject of an update, ``Re:`` the story's first report (mail clients thread on it)."""
    if alert.kind != "update" or alert.story is None:
        return None
    return f"Re: [{rules}] {alert.story.first_title}"


def batch_note(alert: Alert) -> str:
    """A digest line's note on the story: `` · also reported, 4 outlets``."""
    story = alert.story
    if story is None:
        return ""
    if alert.kind == "update":
        return f" · also reported ({outlets(story.outlets)} so far)"
    return f" · {outlets(story.outlets)}" if story.outlets > 1 else ""
