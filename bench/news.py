"""Synthetic world news for the cycle benchmark: feeds, items and the rules that watch them.

Everything is a pure function of a seed, so two runs (and the feed server and the
harness, which run in different processes) agree on every byte:

- a feed is an RSS 2.0 document of ``items`` items (default 50), newest first, of a
  size drawn between 40 and 70 KB; each item has a headline, an HTML teaser of a few
  paragraphs, a permalink guid, a pubDate, a category and a ``dc:creator``;
- headlines and teasers are world-news-like: countries, cities, officials with
  made-up names, institutions and topics, in a few dozen sentence shapes;
- the people and companies in the news come from one pool of made-up names; the rules
  mostly watch names from a second pool that never appears (as most watch terms do on
  a given day), and a few (``MATCHING``, whatever the rule count) watch names and topics that do, so
  alerts happen at a realistic rate (a few per cent of the articles).
"""

from __future__ import annotations

import html
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit


def _words(text: str) -> tuple[str, ...]:
    """Space-separated words; a hyphen stands for a space inside a name."""
    return tuple(w.replace("-", " ") for w in text.split())


COUNTRIES = _words(
    "Argentina Australia Brazil Canada Chile China Colombia Egypt Ethiopia France Germany Ghana "
    "Greece India Indonesia Iran Iraq Israel Italy Japan Jordan Kenya Lebanon Libya Malaysia Mali "
    "Mexico Morocco Myanmar Nepal Niger Nigeria Norway Pakistan Peru Philippines Poland Portugal "
    "Qatar Romania Russia Rwanda Senegal Serbia Somalia Spain Sudan Sweden Syria Taiwan Tanzania "
    "Thailand Tunisia Turkey Uganda Ukraine Venezuela Vietnam Yemen Zambia Zimbabwe"
)
CITY_LIST = _words(
    "Abuja Addis-Ababa Ankara Athens Baghdad Bangkok Beirut Berlin Bogota Brussels Buenos-Aires "
    "Cairo Caracas Dakar Dhaka Doha Geneva Hanoi Istanbul Jakarta Jerusalem Kabul Kampala Karachi "
    "Khartoum Kyiv Lagos Lima Lisbon London Madrid Manila Mexico-City Moscow Mumbai Nairobi "
    "New-Delhi Oslo Paris Rabat Riyadh Rome Santiago Seoul Taipei Tehran Tokyo Tunis Warsaw"
)
INSTITUTIONS = (
    "the United Nations",
    "NATO",
    "the European Union",
    "the World Health Organization",
    "the International Monetary Fund",
    "the World Bank",
    "OPEC",
    "the African Union",
    "ASEAN",
    "the Security Council",
    "the central bank",
    "parliament",
    "the supreme court",
    "the electoral commission",
    "the finance ministry",
    "the Red Cross",
)
ROLES = (
    "President",
    "Prime Minister",
    "Foreign Minister",
    "Finance Minister",
    "Defence Minister",
    "opposition leader",
    "army chief",
    "central bank governor",
    "UN envoy",
    "health minister",
    "mayor",
    "senator",
)
TOPICS = (
    "ceasefire",
    "peace talks",
    "election",
    "inflation",
    "interest rates",
    "drought",
    "wildfire",
    "earthquake",
    "flooding",
    "trade deal",
    "sanctions",
    "protests",
    "budget",
    "refugees",
    "border dispute",
    "vaccine rollout",
    "climate summit",
    "oil output",
    "currency crisis",
    "corruption probe",
    "prisoner exchange",
    "cyberattack",
    "strike",
    "debt talks",
    "food prices",
    "power cuts",
    "grain exports",
    "mining licences",
)
VERBS = (
    "warns of",
    "rejects",
    "backs",
    "calls for",
    "signs",
    "postpones",
    "condemns",
    "announces",
    "suspends",
    "agrees to",
    "pushes for",
    "rules out",
    "defends",
    "questions",
)
OUTCOMES = (
    "talks stall",
    "markets slide",
    "pressure mounts",
    "thousands march",
    "aid arrives",
    "deadline looms",
    "death toll rises",
    "investors wait",
    "officials meet",
    "rescuers search",
)
SECTIONS = ("World", "Africa", "Americas", "Asia", "Europe", "Middle East", "Business", "Politics")
PUBLISHERS = (
    "Global Wire",
    "The Daily Meridian",
    "Northern Courier",
    "Harbor Times",
    "Continental Post",
    "The Observer Desk",
    "Eastern Herald",
    "Southern Chronicle",
    "Capital Dispatch",
    "World Report",
)
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
_FILLER = (
    "Officials said the decision followed weeks of negotiations.",
    "Analysts expect the move to weigh on regional markets.",
    "The announcement drew criticism from rights groups.",
    "Talks are expected to resume next week.",
    "Residents described long queues for fuel and bread.",
    "The government has not commented on the reports.",
    "Diplomats said a joint statement could come within days.",
    "Local media reported heavy traffic at border crossings.",
    "The opposition called the plan a distraction.",
    "Aid agencies warned that supplies were running low.",
)
MATCHING = 10  # rules that watch names or topics that do appear in the news
LATENCY_MARKER = "Kestrelgrad"  # only in the items published during the latency test


def made_up_word(rng: random.Random, syllables: int) -> str:
    """A pronounceable word that is not in any dictionary."""
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables))


def made_up_names(seed: int, count: int, tag: str) -> list[str]:
    """``count`` distinct made-up person and company names (``tag`` separates pools)."""
    rng = random.Random(f"{seed}:{tag}")
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        first = made_up_word(rng, rng.choice((2, 2, 3))).title()
        last = made_up_word(rng, rng.choice((2, 3, 3, 4))).title()
        name = f"{first} {last}" if rng.random() < 0.8 else f"{last} {rng.choice(('Holdings', 'Group'))}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


@dataclass(frozen=True, slots=True)
class NewsWorld:
    """The vocabulary of one seed: who is in the news."""

    seed: int
    in_news: tuple[str, ...]

    @classmethod
    def make(cls, seed: int) -> NewsWorld:
        return cls(seed, tuple(made_up_names(seed, 2_000, "news")))

    def absent(self, count: int) -> list[str]:
        """``count`` names that never appear in the news of this world."""
        present = set(self.in_news)
        names = [n for n in made_up_names(self.seed, count + 100, "absent") if n not in present]
        return names[:count]


@dataclass(frozen=True, slots=True)
class Item:
    """One news item as the server renders it."""

    guid: str
    title: str
    description_html: str
    published: datetime
    category: str
    creator: str

    @property
    def page_path(self) -> str:
        """Where the feed server serves this item's article page (``--pages``)."""
        return "/pages" + urlsplit(self.guid).path + ".html"

    def xml(self, *, pages: bool = False) -> str:
        """The ``<item>``; with ``pages``, its link is the article page on the feed's own server."""
        return (
            "<item>"
            f"<title>{html.escape(self.title, quote=False)}</title>"
            f"<link>{self.page_path if pages else self.guid}</link>"
            f'<guid isPermaLink="true">{self.guid}</guid>'
            f"<pubDate>{format_datetime(self.published, usegmt=True)}</pubDate>"
            f"<category>{html.escape(self.category, quote=False)}</category>"
            f"<dc:creator>{html.escape(self.creator, quote=False)}</dc:creator>"
            f"<description>{html.escape(self.description_html, quote=False)}</description>"
            "</item>\n"
        )


def headline(rng: random.Random, world: NewsWorld) -> str:
    country, other = rng.sample(COUNTRIES, 2)
    person = rng.choice(world.in_news)
    topic = rng.choice(TOPICS)
    shapes = (
        f"{country} {rng.choice(ROLES)} {rng.choice(VERBS)} {topic} as {rng.choice(OUTCOMES)}",
        f"{person} {rng.choice(VERBS)} {topic} in {rng.choice(CITY_LIST)}",
        f"{country} and {other} {rng.choice(VERBS)} {topic}",
        f"{rng.choice(INSTITUTIONS).capitalize()} {rng.choice(VERBS)} {country} {topic}",
        f"{topic.capitalize()}: {rng.choice(OUTCOMES)} in {rng.choice(CITY_LIST)}",
        f"What the {topic} in {country} means for {other}",
    )
    return rng.choice(shapes)


def sentence(rng: random.Random, world: NewsWorld) -> str:
    country, other = rng.sample(COUNTRIES, 2)
    person = rng.choice(world.in_news)
    city = rng.choice(CITY_LIST)
    topic = rng.choice(TOPICS)
    n = rng.randint(2, 900)
    shapes = (
        f"{country}'s {rng.choice(ROLES)} {person} {rng.choice(VERBS)} the {topic} on {rng.choice(_DAYS)}.",
        f"Speaking in {city}, {person} said {country} would not accept new {topic} terms.",
        f"At least {n} people were affected, according to {rng.choice(INSTITUTIONS)}.",
        f"{rng.choice(INSTITUTIONS).capitalize()} said talks with {other} on the {topic} would continue.",
        f'"We are ready to work with {other}," {person} told reporters in {city}.',
        f"The {topic} has dominated politics in {country} since {rng.choice(_MONTHS)}.",
        f"Prices rose {n % 40 + 1} percent in {city}, data from {rng.choice(INSTITUTIONS)} showed.",
        rng.choice(_FILLER),
    )
    return rng.choice(shapes)


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "March", "May", "July", "September", "November")


def item(world: NewsWorld, feed: int, serial: int, published: datetime, text_bytes: int) -> Item:
    """Item ``serial`` of ``feed``: the same arguments always give the same item."""
    rng = random.Random(f"{world.seed}:{feed}:{serial}")
    paragraphs: list[str] = []
    size = 0
    while size < text_bytes:
        para = " ".join(sentence(rng, world) for _ in range(rng.randint(2, 4)))
        if rng.random() < 0.3:
            person = rng.choice(world.in_news)
            link = f'<a href="https://news.example/people/{serial}">{html.escape(person)}</a>'
            para += f" {link} declined to comment."
        paragraphs.append(f"<p>{para}</p>")
        size += len(para) + 7
    section = SECTIONS[feed % len(SECTIONS)]
    slug = f"{section.lower().replace(' ', '-')}/{published:%Y/%m}/story-{feed}-{serial}"
    return Item(
        guid=f"https://{publisher_host(feed)}/{slug}",
        title=headline(rng, world),
        description_html="".join(paragraphs),
        published=published,
        category=section,
        creator=rng.choice(world.in_news),
    )


def publisher_host(feed: int) -> str:
    name = PUBLISHERS[feed % len(PUBLISHERS)].lower().replace("the ", "").replace(" ", "")
    return f"www.{name}{feed // len(PUBLISHERS)}.example"


def feed_title(feed: int) -> str:
    return f"{PUBLISHERS[feed % len(PUBLISHERS)]} {feed // len(PUBLISHERS)}: {SECTIONS[feed % len(SECTIONS)]}"


def feed_size(seed: int, feed: int, low: int = 42_000, high: int = 67_000) -> int:
    """The size in bytes this feed aims at (uniform between ``low`` and ``high``; the
    rendered feed lands within a few per cent of it, so between 40 and 70 KB)."""
    return random.Random(f"{seed}:size:{feed}").randint(low, high)


def render_feed(feed: int, items: Sequence[Item], built: datetime, *, pages: bool = False) -> bytes:
    """An RSS 2.0 document (``pages``: links to the article pages the feed server serves)."""
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n'
        f"<title>{html.escape(feed_title(feed), quote=False)}</title>\n"
        f"<link>https://{publisher_host(feed)}/</link>\n"
        f"<description>Latest {SECTIONS[feed % len(SECTIONS)]} news</description>\n"
        "<language>en</language>\n"
        f"<lastBuildDate>{format_datetime(built, usegmt=True)}</lastBuildDate>\n"
    )
    return (head + "".join(i.xml(pages=pages) for i in items) + "</channel>\n</rss>\n").encode("utf-8")


def render_page(world: NewsWorld, feed: int, item: Item) -> bytes:
    """The item's article page: its paragraphs and more in a news site's chrome (a menu,
    a cookie banner, related links, a tracking script, a footer), about 40 KB like a
    light real page."""
    rng = random.Random(f"page:{item.guid}")
    nav = "".join(f'<li><a href="/section/{n}">{s}</a></li>' for n, s in enumerate(SECTIONS))
    related = "".join(
        f'<li><a href="/related/{n}">{html.escape(headline(rng, world))}</a></li>' for n in range(30)
    )
    more = "".join(f"<p>{html.escape(sentence(rng, world))}</p>" for _ in range(12))
    script = "<script>window.dataLayer=[" + ",".join(f'{{"k{n}":{n}}}' for n in range(1500)) + "];</script>"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(item.title)}'
        f"</title>{script}</head><body><header><nav><ul>{nav}</ul></nav>"
        '<div class="cookies">We use cookies. <a href="/privacy">Privacy policy</a></div></header>'
        f"<main><article><h1>{html.escape(item.title)}</h1><p class=byline>By {html.escape(item.creator)}, "
        f"{format_datetime(item.published, usegmt=True)}</p>{item.description_html}{more}</article>"
        f"<aside><h2>Most read</h2><ul>{related}</ul></aside></main><footer>{publisher_host(feed)} "
        "&copy; 2024 <a href='/terms'>Terms</a> <a href='/newsletter'>Newsletter</a></footer></body></html>"
    ).encode()


def per_item_text(seed: int, feed: int, items: int) -> int:
    """Teaser bytes per item so that the feed lands near its target size."""
    overhead = 520  # tags, guid twice, date, category, creator, title (escaped)
    return max(120, int(feed_size(seed, feed) / max(1, items) / 1.02) - overhead)


@dataclass
class FeedHistory:
    """One feed's items, newest first; ``serial`` counts every item ever made."""

    feed: int
    items: list[Item]
    serial: int
    text_bytes: int


def initial_feed(world: NewsWorld, feed: int, items: int, now: datetime) -> FeedHistory:
    """A feed's first ``items`` items, published over the last three days."""
    text_bytes = per_item_text(world.seed, feed, items)
    rng = random.Random(f"{world.seed}:times:{feed}")
    stamps = sorted((now - timedelta(minutes=rng.uniform(5, 72 * 60)) for _ in range(items)), reverse=True)
    made = [
        item(world, feed, items - k, stamp.replace(microsecond=0), text_bytes)
        for k, stamp in enumerate(stamps)
    ]
    return FeedHistory(feed, made, items, text_bytes)


def add_items(world: NewsWorld, history: FeedHistory, count: int, now: datetime, keep: int) -> None:
    """Prepend ``count`` new items published now; keep the newest ``keep``."""
    fresh = []
    for _ in range(count):
        history.serial += 1
        fresh.append(
            item(world, history.feed, history.serial, now.replace(microsecond=0), history.text_bytes)
        )
    history.items[:0] = reversed(fresh)
    del history.items[keep:]


def marked_item(history: FeedHistory, token: str, now: datetime) -> Item:
    """An item the latency rule matches: the marker and a token that identifies it."""
    history.serial += 1
    return Item(
        guid=f"https://{publisher_host(history.feed)}/breaking/{token}",
        title=f"Breaking: {LATENCY_MARKER} talks resume ({token})",
        description_html=f"<p>Negotiators met in {LATENCY_MARKER} on {now:%A}. Reference {token}.</p>",
        published=now.replace(microsecond=0),
        category="Breaking",
        creator="Desk",
    )


def rules(world: NewsWorld, count: int, channel: str = "hook") -> list[dict[str, Any]]:
    """``count`` rules as config dicts: the latency probe, ``MATCHING`` rules that watch
    people and topics in the news (spread through the list), the rest watching names
    that never appear."""
    rng = random.Random(f"{world.seed}:rules")
    # Every probe is its own alert (``stories: each``): the probes read alike, and folded
    # into one story they would alert once in all, leaving the others' latency unmeasured.
    probe = {"name": "latency probe", "any": [LATENCY_MARKER], "notify": [channel], "stories": "each"}
    made: list[dict[str, Any]] = [probe]
    absent = iter(world.absent(3 * count))
    every = max(1, count // MATCHING)
    for i in range(1, count):
        if i % every == 0:  # watches the news: a person, or a topic in one country
            if rng.random() < 0.7:
                fields: dict[str, Any] = {"any": [rng.choice(world.in_news)]}
            else:
                topic, country = rng.choice(TOPICS), rng.choice(COUNTRIES)
                fields = {"query": f'"{country} {rng.choice(ROLES)}" NEAR/8 "{topic}"'}
        else:
            shape = rng.randrange(5)
            if shape == 0:
                fields = {"any": [next(absent) for _ in range(rng.randint(1, 3))]}
            elif shape == 1:
                fields = {"all": [next(absent), rng.choice(TOPICS)]}
            elif shape == 2:
                fields = {"query": f'"{next(absent)}" OR "{next(absent)}"'}
            elif shape == 3:
                fields = {"any": [next(absent)], "exclude": [rng.choice(COUNTRIES)]}
            else:
                fields = {"query": f'"{next(absent)}" {rng.choice(COUNTRIES)}'}
        made.append({"name": f"rule {i}", "notify": [channel], **fields})
    return made[:count]


@dataclass(frozen=True, slots=True)
class Keywords:
    """A rule as a keyword loop sees it (lower case): one of ``any``, all of ``all``,
    none of ``exclude`` (a query is read as ``any`` when it has ``OR``, else ``all``)."""

    any: tuple[str, ...]
    all: tuple[str, ...]
    exclude: tuple[str, ...]

    @classmethod
    def of(cls, rule: dict[str, Any]) -> Keywords:
        any_, all_ = list(rule.get("any", ())), list(rule.get("all", ()))
        query = rule.get("query")
        if query:
            parts = [p.strip() for p in query.replace(" OR ", '"').split('"') if p.strip()]
            parts = [p for p in parts if not p.startswith("NEAR/")]
            (any_ if " OR " in query else all_).extend(parts)
        return cls(_lower(any_), _lower(all_), _lower(rule.get("exclude", ())))

    def hit(self, text: str) -> bool:
        """``text`` must already be lower case."""
        return (
            (not self.any or any(p in text for p in self.any))
            and all(p in text for p in self.all)
            and not any(p in text for p in self.exclude)
        )


def _lower(phrases: Sequence[str]) -> tuple[str, ...]:
    return tuple(p.lower() for p in phrases)


def now_utc() -> datetime:
    return datetime.now(UTC)
