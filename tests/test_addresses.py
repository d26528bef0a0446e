"""The address checked is the address connected to: the fetcher's address policy.

No network: host names resolve through the fetcher's resolver seam (``tests.netseams``),
and its policy seam counts 127.0.0.2 as public, so the "public" server and the private
one (127.0.0.1) are both real loopback servers on the same port. Every test asserts what
the private server received, which is how a refused connection shows: nothing.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.config import FetchSettings
from monitor.errors import FetchError
from monitor.fetch import Fetcher
from monitor.models import Fetched
from tests.netseams import (
    PRIVATE_IP,
    PUBLIC_IP,
    Resolver,
    Server,
    pretend_public,
    redirect,
    respond,
    server_pair,
)

FEED = b"<rss version='2.0'><channel><title>public</title></channel></rss>"
SECRET = b"the private server answered"


@dataclass
class Net:
    public: Server
    private: Server
    resolver: Resolver
    fetcher: Fetcher

    def url(self, host: str, path: str = "/feed") -> str:
        return f"http://{host}:{self.public.port}{path}"

    def refused(self, url: str, *, origin: str | None = None) -> str:
        with pytest.raises(FetchError) as info:
            self.fetcher.fetch(url, origin=origin)
        assert info.value.url == url
        return str(info.value)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Server, Server]]:
    public, private = server_pair()
    yield public, private
    public.close()
    private.close()


@pytest.fixture
def net(servers: tuple[Server, Server]) -> Iterator[Net]:
    public, private = servers
    public.reset()
    private.reset()
    for path in ("/feed", "/page", "/admin", "/moved"):
        private.routes[path] = respond(SECRET, content_type="text/plain")
    resolver = Resolver()
    fetcher = Fetcher(FetchSettings(), resolver=resolver, policy=pretend_public)
    yield Net(public, private, resolver, fetcher)
    fetcher.close()


def _body(result: object) -> bytes:
    assert isinstance(result, Fetched)
    return result.body


def refusal(url: str, ip: str) -> str:
    return f"fetch: connection to a non-public address refused: {url} ({ip})"


@pytest.mark.parametrize("connection", ["close", "keep-alive"])
def test_dns_rebinding_never_reaches_the_private_server(net: Net, connection: str) -> None:
    """First answer public, every later one 127.0.0.1: the second fetch either reuses the
    connection opened to the checked public address, or is refused; never the private server."""
    net.resolver.table["rebind.test"] = [[PUBLIC_IP], [PRIVATE_IP]]
    net.public.routes["/feed"] = respond(FEED, Connection=connection)
    url = net.url("rebind.test")
    assert _body(net.fetcher.fetch(url)) == FEED
    if connection == "close":
        assert net.refused(url) == refusal(url, PRIVATE_IP)
    else:
        assert _body(net.fetcher.fetch(url)) == FEED
    assert net.private.log == []
    # One lookup per fetch: the one that decided the origin's trust is the one connected to.
    assert net.resolver.lookups == ["rebind.test"] * (2 if connection == "close" else 1)


def test_a_host_with_one_private_record_is_public(net: Net) -> None:
    """Its own connection skips the private record (listed first), and it may not redirect
    to a private address."""
    net.resolver.always("mixed.test", PRIVATE_IP, PUBLIC_IP)
    net.resolver.always("inside.test", PRIVATE_IP)
    net.public.routes["/page"] = respond(FEED)
    net.public.routes["/feed"] = redirect(net.url("inside.test", "/admin"))
    assert _body(net.fetcher.fetch(net.url("mixed.test", "/page"))) == FEED
    hop = net.url("inside.test", "/admin")
    assert net.refused(net.url("mixed.test")) == refusal(hop, PRIVATE_IP)
    assert net.private.log == []
    assert net.public.paths == ["/page", "/feed"]


def test_an_origin_whose_addresses_are_all_private_may_go_anywhere(net: Net) -> None:
    net.resolver.always("intranet.test", PRIVATE_IP)
    net.resolver.always("other.test", PRIVATE_IP)
    net.private.routes["/feed"] = redirect(net.url("other.test", "/moved"))
    net.private.routes["/moved"] = respond(FEED)
    result = net.fetcher.fetch(net.url("intranet.test"))
    assert _body(result) == FEED
    assert isinstance(result, Fetched) and result.final_url == net.url("other.test", "/moved")
    page = net.fetcher.fetch(f"http://{PRIVATE_IP}:{net.public.port}/page", origin=net.url("intranet.test"))
    assert _body(page) == SECRET


@pytest.mark.parametrize(
    "link",
    ["http://inside.test:{port}/page", f"http://{PRIVATE_IP}:{{port}}/page", "http://[::1]:{port}/page"],
    ids=["name", "literal", "ipv6-literal"],
)
def test_an_article_link_from_a_public_feed_may_not_reach_a_private_address(net: Net, link: str) -> None:
    net.resolver.always("news.test", PUBLIC_IP)
    net.resolver.always("inside.test", PRIVATE_IP)
    url = link.format(port=net.public.port)
    ip = "::1" if "[::1]" in url else PRIVATE_IP
    assert net.refused(url, origin=net.url("news.test")) == refusal(url, ip)
    assert net.private.log == []
    net.public.routes["/page"] = respond(b"<html>article</html>", content_type="text/html")
    assert _body(net.fetcher.fetch(net.url("news.test", "/page"), origin=net.url("news.test"))).startswith(
        b"<html>"
    )


def test_a_pooled_connection_to_a_private_address_serves_no_public_origin(net: Net) -> None:
    """A trusted fetch leaves a keep-alive connection to 127.0.0.1 for shared.test; a
    public origin's request for the same host does not get to use it."""
    net.resolver.always("shared.test", PRIVATE_IP)
    net.resolver.always("news.test", PUBLIC_IP)
    page = net.url("shared.test", "/page")
    assert _body(net.fetcher.fetch(page)) == SECRET  # configured on a private address: allowed
    assert net.refused(page, origin=net.url("news.test")) == refusal(page, PRIVATE_IP)
    assert net.private.paths == ["/page"]


def test_an_origin_seen_public_stays_public_when_its_dns_turns_private(net: Net) -> None:
    """A hostile publisher answering "private" for its own feed host on a later poll does
    not buy its article links the right to reach private addresses."""
    net.resolver.table["flip.test"] = [[PUBLIC_IP], [PRIVATE_IP]]
    net.resolver.always("inside.test", PRIVATE_IP)
    net.public.routes["/feed"] = respond(FEED)
    assert _body(net.fetcher.fetch(net.url("flip.test"))) == FEED
    link = net.url("inside.test", "/page")
    assert net.refused(link, origin=net.url("flip.test")) == refusal(link, PRIVATE_IP)
    assert net.private.log == []


def _hop_to(net: Net, location: str) -> str:
    net.resolver.always("news.test", PUBLIC_IP)
    net.public.routes["/feed"] = redirect(location)
    net.public.routes["/hop"] = redirect(f"http://{PRIVATE_IP}:{net.public.port}/admin", 301)
    return net.url("news.test")


@pytest.mark.parametrize(
    ("location", "refused"),
    [
        ("http://127.0.0.1:{port}/admin", "127.0.0.1"),
        ("http://localhost:{port}/admin", "127.0.0.1"),
        ("http://[::1]:{port}/x", "::1"),
        ("http://10.1.2.3/x", "10.1.2.3"),
        ("http://192.168.0.1/x", "192.168.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[fd00::1]/x", "fd00::1"),
        ("http://[fe80::1]/x", "fe80::1"),
        ("http://0.0.0.0:{port}/x", "0.0.0.0"),
        ("http://[::ffff:127.0.0.1]:{port}/x", "::ffff:7f00:1"),
        ("http://2130706433:{port}/admin", "127.0.0.1"),
        ("http://news.test:{port}/hop", "127.0.0.1"),
    ],
    ids=[
        "loopback",
        "localhost-name",
        "ipv6-loopback",
        "rfc1918-10",
        "rfc1918-192",
        "cloud-metadata",
        "unique-local",
        "ipv6-link-local",
        "unspecified",
        "v4-mapped",
        "decimal-loopback",
        "second-hop",
    ],
)
def test_every_hop_from_a_public_origin_is_checked(net: Net, location: str, refused: str) -> None:
    net.resolver.always("localhost", PRIVATE_IP, "::1")
    url = _hop_to(net, location.format(port=net.public.port))
    message = net.refused(url)
    assert message.startswith("fetch: connection to a non-public address refused: http://"), message
    assert message.endswith(f" ({refused})")
    assert net.private.log == []


def test_public_to_public_redirects_are_followed(net: Net) -> None:
    net.resolver.always("cdn.test", PUBLIC_IP)
    url = _hop_to(net, net.url("cdn.test", "/real.xml"))
    net.public.routes["/real.xml"] = respond(FEED)
    result = net.fetcher.fetch(url)
    assert isinstance(result, Fetched)
    assert (result.final_url, result.body) == (net.url("cdn.test", "/real.xml"), FEED)
    assert net.public.log[-1] == (f"cdn.test:{net.public.port}", "/real.xml")


def test_a_host_that_does_not_resolve_is_a_fetch_error(net: Net) -> None:
    url = net.url("nowhere.test")
    message = net.refused(url)
    assert message.startswith("fetch: cannot connect: cannot resolve 'nowhere.test': "), message


def test_a_redirect_to_a_host_idna_cannot_encode_is_a_fetch_error(net: Net) -> None:
    url = _hop_to(net, "http://a..b/x")
    message = net.refused(url)
    assert message.startswith("fetch: cannot connect: cannot resolve 'a..b': "), message


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("javascript:alert(1)", "fetch: redirected to an address no client can fetch ("),
        ("mailto:desk@news.test", "fetch: redirected to an address no client can fetch ("),
        ("data:text/xml,<rss/>", "fetch: redirected to an address no client can fetch ("),
        ("ftp://files.test/feed.xml", "fetch: UnsupportedProtocol: "),
        ("http://[::1/feed", "fetch: RemoteProtocolError: Invalid URL in location header: "),
        ("http://cdn.test:port/feed", "fetch: RemoteProtocolError: Invalid URL in location header: "),
    ],
    ids=["javascript", "mailto", "data", "ftp", "broken-ipv6", "port-not-a-number"],
)
def test_a_redirect_to_an_address_no_client_can_fetch_is_a_fetch_error(
    net: Net, location: str, message: str
) -> None:
    """httpx raised InvalidURL (not one of its HTTPErrors) following ``Location:
    javascript:...``; it left ``fetch`` as itself, and ``feeds add`` showed a traceback."""
    url = _hop_to(net, location)
    assert net.refused(url).startswith(message)
    assert net.private.log == []


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (needed to make a test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=tls.test", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_uses_the_host_name_for_sni_and_verification(net: Net, tmp_path: Path) -> None:
    """The socket goes to the checked address; the handshake names the host (SNI) and the
    certificate is verified (this self-signed one is refused)."""
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    listener = socket.create_server((PUBLIC_IP, 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, pytest.raises(ssl.SSLError):
            context.wrap_socket(conn, server_side=True).recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    net.resolver.always("tls.test", PUBLIC_IP)
    try:
        message = net.refused(f"https://tls.test:{listener.getsockname()[1]}/feed")
    finally:
        thread.join(10)
        listener.close()
    assert "certificate verify failed" in message, message
    assert names == ["tls.test"]
