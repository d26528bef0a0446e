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
from typing import TextIO

from monitor.app import App, CycleReport
from monitor.config import Settings
from monitor.samples import rss_item, voa_article, voa_feed


def _feed_body() -> bytes:
    article = voa_article()
    others = (
        rss_item(
            "Sample: Nordic leaders meet Zelenskyy in Stockholm",
            "https://example.org/sample/nordic-summit",
            article.published - timedelta(hours=3),
            "Leaders discussed air defence and reconstruction funding.",
        ),
        rss_item(
            "Sample: Heavy rain expected across central Europe",
            "https://example.org/sample/weather",
            article.published - timedelta(hours=5),
            "Forecasters warn of flooding along the Danube this weekend.",
        ),
    )
    return voa_feed(extra_items=others)


class _FeedHandler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path != "/voa.xml":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the demo output clean."""


@contextmanager
def serve_sample() -> Iterator[str]:
    """Serve the sample feed on 127.0.0.1 and yield its URL."""
    handler = type("SampleFeed", (_FeedHandler,), {"body": _feed_body()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/voa.xml"
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
            "Note that both phrases sit deep in the article body, not in the headline.\n"
        )
        return report
