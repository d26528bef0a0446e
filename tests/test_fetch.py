"""The fetcher against a real loopback server: validators, compression, caps, time limits."""

from __future__ import annotations

import gzip
import itertools
import socket
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor import __version__
from monitor.config import FetchSettings
from monitor.errors import FetchError
from monitor.fetch import MAX_VALIDATOR, MAX_WAIT, Fetcher, parse_retry_after, read_body, validator
from monitor.models import Fetched, NotModified
from tests.conftest import free_port
from tests.netseams import Resolver, Server, respond

NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
FEED = b"<rss version='2.0'><channel><title>t</title></channel></rss>"


def _fetcher(**limits: object) -> Fetcher:
    return Fetcher(FetchSettings.model_validate(limits))


def _get(url: str, **limits: object) -> Fetched | NotModified:
    with _fetcher(**limits) as fetcher:
        return fetcher.fetch(url, now=NOW)


def test_plain_fetch_reports_validators_and_identity(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/f").respond_with_data(
        FEED, headers={"ETag": '"abc"', "Last-Modified": "Fri, 31 May 2024 17:00:00 GMT"}
    )
    result = _get(httpserver.url_for("/f"))
    assert isinstance(result, Fetched)
    assert (result.body, result.etag, result.last_modified) == (
        FEED,
        '"abc"',
        "Fri, 31 May 2024 17:00:00 GMT",
    )
    [(request, _)] = httpserver.log
    agent = request.headers["User-Agent"]
    assert agent.startswith(f"monitor/{__version__} (+https://") and "github.com" in agent
    assert "gzip" in request.headers["Accept-Encoding"]


def test_conditional_get_returns_not_modified(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/f", headers={"If-None-Match": '"abc"'}).respond_with_data("", status=304)
    with _fetcher() as fetcher:
        result = fetcher.fetch(httpserver.url_for("/f"), etag='"abc"', last_modified="x", now=NOW)
    assert result == NotModified(url=httpserver.url_for("/f"), fetched_at=NOW)
    [(request, _)] = httpserver.log
    assert request.headers["If-Modified-Since"] == "x"


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # the bare DEFLATE stream some servers send
        ("identity", lambda b: b),
    ],
    ids=["gzip", "deflate", "raw-deflate", "identity"],
)
def test_compressed_bodies_are_decoded(httpserver: HTTPServer, encoding: str, compress: object) -> None:
    assert callable(compress)
    httpserver.expect_request("/f").respond_with_data(compress(FEED), headers={"Content-Encoding": encoding})
    result = _get(httpserver.url_for("/f"))
    assert isinstance(result, Fetched) and result.body == FEED


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ('"33a64df5"', '"33a64df5"'),
        ('W/"0815"', 'W/"0815"'),
        ("  Fri, 31 May 2024 17:00:00 GMT ", "Fri, 31 May 2024 17:00:00 GMT"),
        ('"caf\xe9"', None),
        ('"\u2603"', None),
        ('"a\tb"', None),
        ("", None),
        (None, None),
        ('"' + "e" * (MAX_VALIDATOR - 2) + '"', '"' + "e" * (MAX_VALIDATOR - 2) + '"'),
        ('"' + "e" * MAX_VALIDATOR + '"', None),
    ],
    ids=[
        "strong",
        "weak",
        "date-trimmed",
        "latin-1",
        "snowman",
        "tab",
        "empty",
        "none",
        "longest",
        "too-long",
    ],
)
def test_a_validator_is_kept_only_when_it_can_be_sent_back(value: str | None, kept: str | None) -> None:
    assert validator(value) == kept


def test_stored_validators_that_cannot_be_sent_are_left_out_of_the_request(httpserver: HTTPServer) -> None:
    """One stored before validators were checked: the request goes out without it."""
    httpserver.expect_request("/f").respond_with_data(FEED)
    with _fetcher() as fetcher:
        result = fetcher.fetch(httpserver.url_for("/f"), etag='"caf\xe9"', last_modified="\u2603")
    assert isinstance(result, Fetched)
    request, _ = httpserver.log[-1]
    assert "If-None-Match" not in request.headers and "If-Modified-Since" not in request.headers


def test_redirects_are_followed_and_final_url_kept(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data(FEED)
    result = _get(httpserver.url_for("/old"))
    assert isinstance(result, Fetched)
    assert result.final_url == httpserver.url_for("/new") and result.url == httpserver.url_for("/old")


@pytest.mark.parametrize("bare", [False, True], ids=["zlib", "bare"])
def test_deflate_is_read_byte_by_byte_in_either_form(httpserver: HTTPServer, bare: bool) -> None:
    """Its form is told from the first two bytes, which may come in two reads."""
    data = zlib.compress(FEED)[2:-4] if bare else zlib.compress(FEED)
    chunks = (data[i : i + 1] for i in range(len(data)))
    response = _streamed(chunks, **{"Content-Encoding": "deflate"})
    httpserver.expect_request("/f").respond_with_response(response)
    result = _get(httpserver.url_for("/f"))
    assert isinstance(result, Fetched) and result.body == FEED


def _members(*parts: bytes) -> bytes:
    return b"".join(gzip.compress(part) for part in parts)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_members(FEED[:40], FEED[40:]), FEED),
        (_members(FEED[:10], b"", FEED[10:30], FEED[30:]), FEED),
        (_members(FEED) + b"trailing garbage", FEED),
        (_members(FEED) + b"\x1f", FEED),
        (_members(FEED) + b"\0" * 8 + _members(b"after the garbage"), FEED),
    ],
    ids=[
        "two-members",
        "four-members-one-empty",
        "trailing-garbage",
        "one-magic-byte-left",
        "member-after-garbage",
    ],
)
def test_every_gzip_member_is_read_even_byte_by_byte(
    httpserver: HTTPServer, data: bytes, expected: bytes
) -> None:
    """A gzip body of several members (RFC 1952 2.2) is their concatenation, as gunzip
    and browsers read it; zlib alone stops after the first, which cut the feed short.
    Bytes after the end that start no member are ignored, and so is all that follows."""
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        response = _streamed(iter(chunks), **{"Content-Encoding": "gzip"})
        httpserver.expect_oneshot_request("/f").respond_with_response(response)
        result = _get(httpserver.url_for("/f"))
        assert isinstance(result, Fetched) and result.body == expected


def test_nothing_after_the_end_of_the_compressed_stream_is_read(httpserver: HTTPServer) -> None:
    """A server that streams on after the last member is not read to its deadline."""
    endless = itertools.chain([_members(FEED)], itertools.repeat(b"after the end " * 100))
    httpserver.expect_request("/f").respond_with_response(_streamed(endless, **{"Content-Encoding": "gzip"}))
    result = _get(httpserver.url_for("/f"), deadline="30s")
    assert isinstance(result, Fetched) and result.body == FEED


@pytest.mark.parametrize(
    "body", [FEED, b"\xef\xbb\xbf" + FEED, b'{"version": "https://jsonfeed.org/version/1.1"}', b"x"]
)
def test_a_body_labelled_gzip_but_sent_as_is_is_read_as_sent(httpserver: HTTPServer, body: bytes) -> None:
    """No gzip member starts without its magic bytes, so such a body was never compressed
    (a plain file with gzip metadata in an object store); it failed every poll."""
    httpserver.expect_request("/f").respond_with_data(body, headers={"Content-Encoding": "gzip"})
    result = _get(httpserver.url_for("/f"))
    assert isinstance(result, Fetched) and result.body == body


def test_a_bomb_split_into_members_is_still_capped(httpserver: HTTPServer) -> None:
    bomb = _members(*[b"\0" * 100_000] * 30)
    response = _streamed(iter([bomb]), **{"Content-Encoding": "gzip"})
    httpserver.expect_request("/f").respond_with_response(response)
    assert (
        str(_error(httpserver.url_for("/f"), max_bytes=1_000_000))
        == "fetch: body is over the 1000000-byte cap"
    )


@given(
    parts=st.lists(st.binary(max_size=300), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=2_000), max_size=12),
    garbage=st.binary(max_size=20).filter(lambda b: not b.startswith(b"\x1f")),
)
def test_gzip_members_in_any_reads_give_their_concatenation(
    parts: list[bytes], cuts: list[int], garbage: bytes
) -> None:
    data = _members(*parts) + garbage
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    response = httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=iter(chunks))
    assert read_body("http://a.example/f", response, 10_000, lambda: None) == b"".join(parts)


def _streamed(chunks: Iterator[bytes], **headers: str) -> Response:
    return Response(chunks, headers=headers, direct_passthrough=True)


def _error(url: str, **limits: object) -> FetchError:
    with pytest.raises(FetchError) as info:
        _get(url, **limits)
    assert info.value.url == url
    return info.value


@pytest.mark.parametrize(
    ("path", "handler", "message"),
    [
        ("/404", lambda r: Response("no", status=404), "fetch: HTTP 404 NOT FOUND"),
        ("/500", lambda r: Response("no", status=500), "fetch: HTTP 500 INTERNAL SERVER ERROR"),
        (
            "/declared-too-big",
            lambda r: Response(b"x" * 2048),
            "fetch: body of 2048 bytes is over the 1024-byte cap",
        ),
        (
            "/streamed-too-big",
            lambda r: _streamed(iter([b"x" * 600] * 4)),
            "fetch: body is over the 1024-byte cap",
        ),
        (
            "/gzip-bomb",
            lambda r: _streamed(iter([gzip.compress(b"\0" * 5_000_000)]), **{"Content-Encoding": "gzip"}),
            "fetch: body is over the 1024-byte cap",
        ),
        (
            "/corrupt-gzip",
            lambda r: Response(b"\x1f\x8b but no gzip after", headers={"Content-Encoding": "gzip"}),
            "fetch: corrupt compressed body: Error -3 while decompressing data: unknown compression method",
        ),
        (
            "/brotli",
            lambda r: Response(b"x", headers={"Content-Encoding": "br"}),
            "fetch: unsupported Content-Encoding 'br'",
        ),
        (
            "/loop",
            lambda r: Response("", status=302, headers={"Location": "/loop"}),
            "fetch: more than 10 redirects",
        ),
    ],
    ids=[
        "404",
        "500",
        "declared-cap",
        "streamed-cap",
        "gzip-bomb",
        "corrupt-gzip",
        "brotli",
        "redirect-loop",
    ],
)
def test_failures_become_fetch_errors(
    httpserver: HTTPServer, path: str, handler: object, message: str
) -> None:
    assert callable(handler)
    httpserver.expect_request(path).respond_with_handler(handler)
    assert str(_error(httpserver.url_for(path), max_bytes=1024)) == message


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), ("Fri, 31 May 2024 18:05:00 GMT", 300.0), ("soon", None)],
    ids=["seconds", "http-date", "garbage"],
)
def test_429_carries_retry_after(httpserver: HTTPServer, header: str, expected: float | None) -> None:
    httpserver.expect_request("/f").respond_with_data(
        "slow down", status=429, headers={"Retry-After": header}
    )
    error = _error(httpserver.url_for("/f"))
    assert str(error) == "fetch: HTTP 429 TOO MANY REQUESTS"
    assert error.retry_after == expected


def test_retry_after_in_the_past_is_zero() -> None:
    assert parse_retry_after("Fri, 31 May 2024 17:00:00 GMT", NOW) == 0.0
    assert parse_retry_after(None, NOW) is None


def test_connection_refused_is_a_fetch_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/feed"
    assert str(_error(url)).startswith("fetch: cannot connect")


def test_a_silent_server_hits_the_read_timeout() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/feed"
        assert str(_error(url, read_timeout="1s")) == "fetch: timed out (read)"
    finally:
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _keep_alive_server(closes_without_answer: int) -> tuple[socket.socket, threading.Thread, list[bytes]]:
    """Answers a request on its first connection, then closes that connection when the
    next request arrives on it (``closes_without_answer`` times, one connection each), as
    a server whose keep-alive timeout ran out just then does; later connections answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(FEED), FEED)

    def serve() -> None:
        first, _ = listener.accept()
        with first:
            requests.append(_read_request(first))
            first.sendall(answer)
            requests.append(_read_request(first))  # the reused connection: closed unanswered
        for _ in range(closes_without_answer - 1):
            conn, _ = listener.accept()
            with conn:
                requests.append(_read_request(conn))
        conn, _ = listener.accept()
        with conn:
            requests.append(_read_request(conn))
            conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread, requests


def test_a_kept_alive_connection_the_server_closed_unanswered_is_retried_once() -> None:
    """HTTP/1.1 lets a server close an idle connection at any time; a GET that meets
    such a close before any response byte is sent again once on a new connection, as
    browsers do, instead of failing the poll."""
    listener, thread, requests = _keep_alive_server(closes_without_answer=1)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/feed"
    try:
        with _fetcher() as fetcher:
            assert isinstance(fetcher.fetch(url, now=NOW), Fetched)
            result = fetcher.fetch(url, now=NOW)
        assert isinstance(result, Fetched) and result.body == FEED
        assert len(requests) == 3
    finally:
        thread.join(5)
        listener.close()


def test_a_server_that_closes_unanswered_again_is_not_retried_twice() -> None:
    listener, thread, requests = _keep_alive_server(closes_without_answer=2)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/feed"
    try:
        with _fetcher() as fetcher:
            assert isinstance(fetcher.fetch(url, now=NOW), Fetched)
            with pytest.raises(FetchError, match="Server disconnected without sending a response"):
                fetcher.fetch(url, now=NOW)
            assert isinstance(fetcher.fetch(url, now=NOW), Fetched)  # the next poll
        assert len(requests) == 4  # one retry, not two
    finally:
        thread.join(5)
        listener.close()


def test_a_dripping_server_hits_the_total_deadline(httpserver: HTTPServer) -> None:
    """Each chunk arrives in time, but the whole body takes too long (clock injected)."""
    httpserver.expect_request("/drip").respond_with_handler(
        lambda r: _streamed(iter([b"<" + b"x" * 70_000] * 20))
    )
    ticks = itertools.count(step=timedelta(seconds=10).total_seconds())
    fetcher = Fetcher(FetchSettings.model_validate({"deadline": "30s"}), monotonic=lambda: next(ticks))
    with fetcher, pytest.raises(FetchError, match=r"^fetch: took longer than 30s$"):
        fetcher.fetch(httpserver.url_for("/drip"), now=NOW)


def test_handler_sees_request(httpserver: HTTPServer) -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(FEED)

    httpserver.expect_request("/f").respond_with_handler(handler)
    _get(httpserver.url_for("/f"))
    assert seen[0].headers["Accept"].startswith("application/rss+xml")


# --- numbers from the server are clamped ----------------------------------------------

WEEK = MAX_WAIT
assert WEEK == 7 * 24 * 3600


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("999999999999", WEEK),
        ("9" * 5000, WEEK),
        ("-5", None),
        ("+5", None),
        ("1.5", None),
        ("²", None),
        ("１２", None),
        ("٣", None),
        ("soon", None),
        ("", None),
        ("Fri, 31 May 2024 18:05:00 GMT", 300.0),
        ("Fri, 31 May 2024 17:00:00 GMT", 0.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", WEEK),
        ("Fri, 31 Dec 9999 23:59:59 -2359", WEEK),
        ("Mon, 01 Jan 0001 00:00:00 +2359", 0.0),
        ("Mon, 01 Jan 0001 00:00:00 GMT", 0.0),
        ("Fri, 31 May 2024 25:61:00 GMT", None),
        ("Fri, 31 May 2024 18:05:00 +9999", None),
        ("Fri, 31 May 2024 18:05:00 GMT" + " x" * 100, None),
    ],
    ids=[
        "seconds",
        "padded",
        "zero",
        "huge",
        "5000-digits",
        "negative",
        "plus-sign",
        "fraction",
        "superscript-two",
        "fullwidth-digits",
        "arabic-indic-digit",
        "garbage",
        "empty",
        "http-date",
        "date-in-the-past",
        "year-9999",
        "year-9999-west",
        "year-1-east",
        "year-1",
        "impossible-time",
        "impossible-offset",
        "over-long",
    ],
)
def test_retry_after_is_clamped(header: str, expected: float | None) -> None:
    """Delta seconds or an HTTP date, within [0, a week]; anything else is ignored."""
    assert parse_retry_after(header, NOW) == expected


def test_a_huge_retry_after_from_a_server_is_a_week_at_most(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/f").respond_with_data(
        "busy", status=503, headers={"Retry-After": "999999999999"}
    )
    assert _error(httpserver.url_for("/f")).retry_after == WEEK


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=600", 600.0),
        ("public, MAX-AGE = 60", 60.0),
        ('max-age="60"', 60.0),
        ("max-age=99999999999999", WEEK),
        ("max-age=" + "9" * 5000, WEEK),
        ("max-age=-1", None),
        ("max-age=²", None),
        ("max-age=soon, max-age=30", 30.0),
        ("no-cache", None),
    ],
    ids=["plain", "spaced", "quoted", "huge", "5000-digits", "negative", "superscript", "second-try", "none"],
)
def test_max_age_is_clamped(httpserver: HTTPServer, header: str, expected: float | None) -> None:
    httpserver.expect_request("/f").respond_with_data(FEED, headers={"Cache-Control": header})
    result = _get(httpserver.url_for("/f"))
    assert isinstance(result, Fetched) and result.max_age == expected


# --- URLs that cannot be requested ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://a..b/x", "fetch: not a valid http(s) URL: 'http://a..b/x' (host: "),
        ("http://" + "a" * 64 + ".com/", "fetch: not a valid http(s) URL: 'http://aaaa"),
        ("http://☃..com/", "fetch: not a valid http(s) URL: 'http://☃..com/' (Invalid IDNA hostname"),
        ("http://ａｂｃ.com/", "fetch: not a valid http(s) URL: 'http://ａｂｃ.com/' (Invalid IDNA hostname"),
        ("http://x.com/\ud800", "fetch: not a valid http(s) URL: 'http://x.com/\\ud800' ("),
        ("http://x.com/\x00", "fetch: not a valid http(s) URL: 'http://x.com/\\x00' (Invalid non-printable"),
        ("http://x.com:0/", "fetch: not a valid http(s) URL: 'http://x.com:0/' (port 0)"),
        ("http://x.com:99999/", "fetch: not a valid http(s) URL: 'http://x.com:99999/' (port 99999)"),
        ("http://[::1/", "fetch: not a valid http(s) URL: 'http://[::1/' (Invalid port"),
        ("http:///feed", "fetch: not a valid http(s) URL: 'http:///feed' (no host)"),
        ("ftp://x.com/feed", "fetch: not an http(s) URL: 'ftp://x.com/feed'"),
        ("javascript:alert(1)", "fetch: not an http(s) URL: 'javascript:alert(1)'"),
        ("feed.xml", "fetch: not an http(s) URL: 'feed.xml'"),
        ("http://x.com/" + "a" * 70_000, "fetch: not a valid http(s) URL: 'http://x.com/aaa"),
    ],
    ids=[
        "empty-label",
        "label-over-63",
        "idna-snowman",
        "idna-fullwidth",
        "lone-surrogate",
        "nul",
        "port-0",
        "port-too-big",
        "broken-ipv6",
        "no-host",
        "ftp",
        "javascript",
        "relative",
        "too-long",
    ],
)
def test_a_url_that_cannot_be_requested_is_a_fetch_error(url: str, message: str) -> None:
    looked_up: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    with Fetcher(FetchSettings(), resolver=resolver) as fetcher, pytest.raises(FetchError) as info:
        fetcher.fetch(url, now=NOW)
    assert str(info.value).startswith(message), str(info.value)
    assert len(str(info.value)) < 400
    assert info.value.url == url
    assert looked_up == []


def test_cookies_are_never_kept_or_sent(httpserver: HTTPServer) -> None:
    """A Set-Cookie with bytes no Cookie header can carry used to break every later request."""
    httpserver.expect_request("/set").respond_with_handler(
        lambda r: Response(FEED, headers=[("Set-Cookie", "\xff\xfe=\x80; Path=/"), ("Set-Cookie", "a=b")])
    )
    httpserver.expect_request("/next").respond_with_data(FEED)
    with _fetcher() as fetcher:
        assert isinstance(fetcher.fetch(httpserver.url_for("/set"), now=NOW), Fetched)
        assert isinstance(fetcher.fetch(httpserver.url_for("/next"), now=NOW), Fetched)
    assert "Cookie" not in httpserver.log[-1][0].headers


def test_at_most_per_host_requests_reach_one_host_at_a_time() -> None:
    """``fetch.per_host`` holds a third request to a busy host back, and no other host."""
    server, resolver = Server("127.0.0.1"), Resolver()
    resolver.always("busy.example", "127.0.0.1")
    resolver.always("other.example", "127.0.0.1")
    changed, inside, most, release = threading.Condition(), [0], [0], threading.Event()

    def held(handler: object) -> None:
        with changed:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            changed.notify_all()
        release.wait(10)
        with changed:
            inside[0] -= 1
        respond(FEED)(handler)  # type: ignore[arg-type]

    server.routes["/held"], server.routes["/feed"] = held, respond(FEED)
    fetcher = Fetcher(FetchSettings.model_validate({"per_host": 2}), resolver=resolver)
    try:
        with fetcher, ThreadPoolExecutor(5) as pool:
            waiting = [
                pool.submit(fetcher.fetch, f"http://busy.example:{server.port}/held") for _ in range(5)
            ]
            with changed:
                assert changed.wait_for(lambda: inside[0] == 2, 10)
            assert isinstance(fetcher.fetch(f"http://other.example:{server.port}/feed"), Fetched)
            with changed:
                assert not changed.wait_for(lambda: inside[0] > 2, 0.5)
            assert fetcher.busy_hosts == 1
            release.set()
            assert all(isinstance(f.result(10), Fetched) for f in waiting)
        assert most[0] == 2 and fetcher.busy_hosts == 0
    finally:
        release.set()
        server.close()


def test_hosts_are_forgotten_once_their_requests_end() -> None:
    """Article links name new hosts for months; the politeness table must not keep them."""
    server, resolver = Server("127.0.0.1"), Resolver()
    server.routes["/feed"] = respond(FEED)
    hosts = [f"site-{n}.example" for n in range(60)]
    for host in hosts:
        resolver.always(host, "127.0.0.1")
    try:
        with Fetcher(FetchSettings(), resolver=resolver) as fetcher:
            for host in hosts:
                assert isinstance(fetcher.fetch(f"http://{host}:{server.port}/feed"), Fetched)
            assert fetcher.busy_hosts == 0
    finally:
        server.close()
