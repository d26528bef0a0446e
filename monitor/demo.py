"""``monitor demo``: the whole flow offline, in seconds, on the bundled VOA article.

A loopback HTTP server serves a feed built from the sample; the demo polls it with
two rules and prints the alert through the ``console://`` channel.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar, TextIO

from monitor.app import App, CycleReport
from monitor.config import Settings
from monitor.samples import rss_feed, rss_item, voa_article, voa_page

_OTHER_PAGES = {
    "/a/nordic-summit.html": "Nordic leaders met Ukraine's president in Stockholm to discuss air defence.",
    "/a/weather.html": "Forecasters warn of flooding along the Danube this weekend after days of rain.",
}


def _feed_body(base: str) -> bytes:
    """Like most news feeds: the headline and a one-line teaser, with a link to the page."""
    article = voa_article()
    teaser = rss_item(article.headline, f"{base}/a/voa-nato.html", article.published, article.teaser)
    others = (
        rss_item(
            "Sample: Nordic leaders meet Zelenskyy in Stockholm",
            f"{base}/a/nordic-summit.html",
            article.published - timedelta(hours=3),
            "Leaders discussed air defence and reconstruction funding.",
        ),
        rss_item(
            "Sample: Heavy rain expected across central Europe",
            f"{base}/a/weather.html",
            article.published - timedelta(hours=5),
            "Forecasters warn of flooding along the Danube this weekend.",
        ),
    )
    return rss_feed("VOA News: Europe", "https://www.voanews.com/", [teaser, *others])


class _SiteHandler(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, tuple[str, bytes]]] = {}

    def do_GET(self) -> None:
        if self.path not in self.pages:
            self.send_error(404)
            return
        content_type, body = self.pages[self.path]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the demo output clean."""


@contextmanager
def serve_sample() -> Iterator[str]:
    """Serve the sample feed and its article page on 127.0.0.1; yield the feed URL."""
    pages: dict[str, tuple[str, bytes]] = {}
    handler = type("SampleSite", (_SiteHandler,), {"pages": pages})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    pages["/voa.xml"] = ("application/rss+xml; charset=utf-8", _feed_body(base))
    pages["/a/voa-nato.html"] = ("text/html; charset=utf-8", voa_page())
    for path, words in _OTHER_PAGES.items():
        pages[path] = (
            "text/html; charset=utf-8",
            f"<html><body><article><p>{words}</p></article></body></html>".encode(),
        )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{base}/voa.xml"
    finally:
        server.shutdown()
        server.server_close()


def demo_settings(feed_url: str, database: Path) -> Settings:
    """Two watch rules, one console channel, alert on everything in the first poll."""
    return Settings.model_validate(
        {
            "database": f"sqlite:///{database}",
            "timezone": "Europe/Kyiv",
            "poll": {"first_poll": "all"},
            "channels": {"console": "console://"},
            "feeds": [{"name": "VOA News (sample)", "url": feed_url}],
            "rules": [
                {
                    "name": "prisoner exchange",
                    "any": ["prisoner exchange", "prisoner swap"],
                    "notify": ["console"],
                },
                {"name": "ATACMS", "all": ["ATACMS"], "exclude": ["opinion"], "notify": ["console"]},
                {"name": "Taiwan strait", "any": ["Taiwan Strait"], "notify": ["console"]},
            ],
        }
    )


def run_demo(out: TextIO) -> CycleReport:
    """Serve, poll, match, alert; print what happened."""
    with tempfile.TemporaryDirectory(prefix="monitor-demo-") as tmp, serve_sample() as url:
        settings = demo_settings(url, Path(tmp) / "demo.db")
        out.write(f"Serving the sample feed at {url}\n")
        out.write("Rules: " + ", ".join(r.name for r in settings.rules) + "\n")
        out.write("Polling once; alerts go to the console channel:\n\n")
        out.flush()
        with App.from_settings(settings) as app:
            report = app.run_once()
        polled = report.outcomes[0]
        out.write(
            f"Done: {polled.new} new articles, {polled.matched} matched, "
            f"{report.delivery.sent + polled.sent} alert(s) sent, status {polled.status}.\n"
            "The feed carried only the headline and a teaser: both phrases were found in the\n"
            "article page, which monitor read because the teaser was short (full_text: auto).\n"
        )
        return report
