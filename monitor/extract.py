"""Article text from a web page, with trafilatura: navigation, captions, footers and
cookie banners removed. Pure: bytes in, text out, no I/O.
"""

from __future__ import annotations

import trafilatura

from monitor.text import collapse_whitespace


def article_text(page: bytes, url: str) -> str:
    """The main text of an article page; empty when nothing article-like is found."""
    if not page.strip():
        return ""
    text = trafilatura.extract(
        page,
        url=url,
        favor_precision=True,
        include_comments=False,
        include_tables=False,
        include_images=False,
        deduplicate=False,
    )
    return collapse_whitespace(text or "")
