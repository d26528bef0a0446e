"""Reading a response body: our own decompression, counted against the size cap as it streams."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterator
from typing import Literal

import httpx

from monitor.errors import FetchError
from monitor.fetch._headers import declared_length


def read_body(
    url: str, response: httpx.Response, limit: int, past_deadline: Callable[[], str | None]
) -> bytes:
    """Read, decompress and cap the body; ``past_deadline`` says why to stop (None: go on)."""
    declared = declared_length(response)
    if declared is not None and declared > limit:
        raise FetchError(url, f"fetch: body of {declared} bytes is over the {limit}-byte cap")
    decoder = _decoder(response.headers.get("Content-Encoding", ""))
    parts: list[bytes] = []
    size = 0
    # iter_raw() without a chunk size yields what each socket read returns; with
    # one, httpx would buffer until that many bytes came, and a server dripping a
    # byte at a time would never reach the deadline check below.
    for chunk in _decoded(response.iter_raw(), decoder, limit + 1):
        size += len(chunk)
        if size > limit:
            raise FetchError(url, f"fetch: body is over the {limit}-byte cap")
        reason = past_deadline()
        if reason is not None:
            raise FetchError(url, reason)
        parts.append(chunk)
    return b"".join(parts)


Decoder = Callable[[bytes], "zlib._Decompress"]
"""A decompressor for a body, made from its first bytes (``deflate`` comes in two forms)."""


def _decoder(encoding: str) -> Decoder | None:
    """The decompressor for gzip/deflate, None for identity."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return _gzip
    if name == "deflate":
        return _deflate
    shown = encoding if len(encoding) <= 40 else encoding[:40] + "…"
    raise httpx.DecodingError(f"unsupported Content-Encoding {shown!r}")


def _gzip(head: bytes) -> zlib._Decompress:
    """One gzip member (RFC 1952); ``_decoded`` starts another for each that follows.

    Every gzip member starts with ``GZIP_MAGIC``; a body labelled gzip that does not was
    sent uncompressed (object-store metadata saying gzip on a plain file, a proxy that
    unpacked the body and kept the header), and is read as sent: nothing compressed can
    be misread that way, and the parser judges what it is."""
    return zlib.decompressobj(16 + zlib.MAX_WBITS)


GZIP_MAGIC = b"\x1f\x8b"
"""The first two bytes of every gzip member."""


def _deflate(head: bytes) -> zlib._Decompress:
    """HTTP's ``deflate`` is zlib-wrapped (RFC 9110), but some servers send the bare
    DEFLATE stream, which browsers and curl read too: a zlib header (RFC 1950: method 8
    in the low nibble, the first two bytes a multiple of 31) says which it is."""
    wrapped = len(head) >= 2 and head[0] & 0x0F == 8 and ((head[0] << 8) | head[1]) % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)


def _first_bytes(chunks: Iterator[bytes], count: int) -> bytes:
    """At least ``count`` bytes from the start (fewer only if the body is shorter)."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= count:
            break
    return head


def _inflate(decoder: zlib._Decompress, data: bytes, cap: int) -> Iterator[bytes]:
    """Decompress ``data`` in steps of at most ``cap`` bytes."""
    yield decoder.decompress(data, cap)
    while decoder.unconsumed_tail:
        yield decoder.decompress(decoder.unconsumed_tail, cap)


def _after_end(make: Decoder, data: bytes) -> Literal["member", "wait", "end"]:
    """What the bytes after the end of a compressed stream are: another gzip member, one
    byte that may start one (wait for the next read), or the end of the body."""
    if make is not _gzip:
        return "end"
    if data.startswith(GZIP_MAGIC):
        return "member"
    return "wait" if len(data) < 2 and GZIP_MAGIC.startswith(data) else "end"


def _decoded(raw: Iterator[bytes], make: Decoder | None, cap: int) -> Iterator[bytes]:
    """Decompress lazily, never producing more than ``cap`` bytes per step.

    A gzip body may hold several members one after another (RFC 1952 2.2: concatenated
    files, streaming compressors, CDNs joining pieces); each is read in turn, as gunzip,
    browsers and curl read them (zlib stops at the end of the first, which cut the feed
    there without a word). Bytes after the end that start no member are ignored, as
    those clients ignore them."""
    if make is None:
        yield from raw
        return
    chunks = iter(raw)
    head = _first_bytes(chunks, 2)  # what tells the forms of deflate apart
    if make is _gzip and not head.startswith(GZIP_MAGIC):
        yield head  # labelled gzip but sent as is: read as sent (see ``_gzip``)
        yield from chunks
        return
    decoder, pending, ended = make(head), b"", False
    try:
        for chunk in itertools.chain([head], chunks):
            data, pending = pending + chunk, b""
            while data:
                if decoder.eof:
                    follows = _after_end(make, data)
                    if follows == "wait":
                        pending = data
                        break
                    if follows == "end":
                        ended = True
                        break
                    decoder = make(data)
                yield from _inflate(decoder, data, cap)
                data = decoder.unused_data if decoder.eof else b""
            if ended:  # nothing after the end is read, so a server cannot stream on
                break
        yield decoder.flush()
    except zlib.error as e:
        raise httpx.DecodingError(f"corrupt compressed body: {e}") from e
