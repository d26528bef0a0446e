"""HTML fragments from feeds -> plain text that rules can match and snippets can quote.

Block elements become line breaks so words from adjacent paragraphs never glue
together ("Kyiv</p><p>Strikes" must not read "KyivStrikes"). Pure; no I/O.
"""

from __future__ import annotations

import re

import lxml.etree
import lxml.html

_BLOCK = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    ]
)
_DROP = ("script", "style", "noscript", "template", "head")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed, paragraphs on their own lines."""
    markup = _CONTROL.sub(" ", markup or "")
    if not markup.strip():
        return ""
    if "<" not in markup and "&" not in markup:
        return collapse_whitespace(markup)
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return collapse_whitespace(markup)
    for element in list(root.iter(*_DROP)):
        element.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCK:
            element.tail = "\n" + (element.tail or "")
    return collapse_whitespace(str(root.text_content()))


def collapse_whitespace(text: str) -> str:
    """One space between words, one newline between paragraphs, no edges."""
    text = _SPACES.sub(" ", text.replace("\r", "\n").replace("\xa0", " "))
    return _BLANK_LINES.sub("\n", text).strip()


def one_line(text: str, limit: int = 300) -> str:
    """A single line, safe for mail subjects and log lines; shortened with an ellipsis."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
