"""``monitor healthcheck``'s request: the daemon's ``/healthz``, read within bounds.

Whatever answers on that address may not be the daemon (another service took the port
after a restart): its answer is read up to ``MAX_ANSWER`` bytes within ``SECONDS`` in
all, and printed without control characters, so neither a huge or endless body nor an
escape sequence reaches the probe's log or a terminal."""

from __future__ import annotations

import time

import httpx

from monitor.text import clean

MAX_ANSWER = 64 * 1024  # /healthz answers a few hundred bytes
SECONDS = 5.0


def ask(url: str) -> tuple[int, str]:
    """The status and the (cut, cleaned) text of ``url``'s answer; httpx errors are the caller's."""
    began = time.monotonic()
    body = b""
    with httpx.stream(
        "GET", url, timeout=SECONDS, trust_env=False, headers={"Accept-Encoding": "identity"}
    ) as response:
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > MAX_ANSWER or time.monotonic() - began > SECONDS:
                break
        status = response.status_code
    return status, clean(body[:MAX_ANSWER].decode("utf-8", "replace"), " ").strip()
