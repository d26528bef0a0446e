"""A real news article (VOA, 31 May 2024) bundled for ``monitor demo`` and the tests.

The phrases people watch for here ("ATACMS", "prisoner exchange") are deep in the
body, not in the headline or teaser.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from importlib.resources import files

VOA_FILE = "voa-nato-ukraine-2024-05-31.txt"
VOA_PUBLISHED = datetime(2024, 5, 31, 17, 42, tzinfo=UTC)
VOA_LINK = "https://www.voanews.com/a/nato-leader-supports-alliance-s-right-to-defend-ukraine/7637578.html"
_BOILERPLATE = {"Accessibility links", "Breaking News", "16x9 Image", "VOA News"}


@dataclass(frozen=True, slots=True)
class SampleArticle:
    """Headline, teaser and body paragraphs of a real article."""

    headline: str
    teaser: str
    paragraphs: tuple[str, ...]
    link: str
    published: datetime

    def body_html(self) -> str:
        """The body as escaped HTML paragraphs."""
        return "".join(f"<p>{html.escape(p)}</p>" for p in self.paragraphs)


def voa_article() -> SampleArticle:
    """The VOA article, with the page furniture (captions, bylines) removed."""
    text = files(__package__).joinpath(VOA_FILE).read_text(encoding="utf-8")
    lines = [line.strip().lstrip("•").strip() for line in text.splitlines()]
    lines = [line for line in lines if line and line not in _BOILERPLATE]
    headline = lines[0]
    body = [
        line for line in lines[1:] if not line.startswith(("A Ukrainian serviceman", "The Voice of America"))
    ]
    return SampleArticle(
        headline=headline,
        teaser=body[0],
        paragraphs=tuple(body),
        link=VOA_LINK,
        published=VOA_PUBLISHED,
    )


def rss_item(
    title: str,
    link: str,
    published: datetime,
    description: str,
    content_html: str = "",
    guid: str | None = None,
) -> str:
    """One RSS 2.0 <item>, every value escaped."""
    esc = html.escape
    parts = [
        f"<title>{esc(title)}</title>",
        f"<link>{esc(link)}</link>",
        f'<guid isPermaLink="false">{esc(guid or link)}</guid>',
        f"<pubDate>{format_datetime(published)}</pubDate>",
        f"<description>{esc(description)}</description>",
    ]
    if content_html:
        parts.append(f"<content:encoded>{esc(content_html)}</content:encoded>")
    return "<item>" + "".join(parts) + "</item>"


def rss_feed(title: str, link: str, items: list[str]) -> bytes:
    """An RSS 2.0 document around some items."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>{html.escape(title)}</title><link>{html.escape(link)}</link>"
        "<description>monitor sample feed</description>" + "".join(items) + "</channel></rss>"
    ).encode()


def voa_feed(*, with_content: bool = True, extra_items: tuple[str, ...] = ()) -> bytes:
    """A VOA-like feed: the article (teaser, and full text when ``with_content``) plus extras."""
    article = voa_article()
    item = rss_item(
        article.headline,
        article.link,
        article.published,
        article.teaser,
        article.body_html() if with_content else "",
    )
    return rss_feed("VOA News: Europe", "https://www.voanews.com/", [item, *extra_items])


def voa_page() -> bytes:
    """The article as a web page, inside site chrome: navigation, cookie banner,
    a "most popular" sidebar and a footer (words a rule must never match on)."""
    article = voa_article()
    esc = html.escape
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{esc(article.headline)} | Voice of America</title></head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/subscribe">Subscribe to our newsletter</a></li>
<li><a href="/podcasts">Podcasts</a></li></ul></nav>
<div class="cookie-banner">We use cookies to improve your experience. Accept cookies</div></header>
<main><article><h1>{esc(article.headline)}</h1><p class="byline">VOA News, May 31, 2024</p>
{article.body_html()}</article>
<aside><h2>Most popular</h2><ul><li><a href="/a">Heat wave grips southern Europe</a></li>
<li><a href="/b">Election live updates</a></li></ul></aside></main>
<footer><p>Subscribe to our newsletter. Follow us. Privacy policy. Terms of use.</p></footer>
</body></html>""".encode()
