"""Reading a response body: our own decompression, counted against the size cap as it streams."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterator

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
        return lambda head: zlib.decompressobj(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return _deflate
    shown = encoding if len(encoding) <= 40 else encoding[:40] + "…"
    raise httpx.DecodingError(f"unsupported Content-Encoding {shown!r}")


def _deflate(head: bytes) -> zlib._Decompress:
    """HTTP's ``deflate`` is zlib-wrapped (RFC 9110), but some servers send the bare
    DEFLATE stream, which browsers and curl read too: a zlib header (RFC 1950: method 8
    in the low nibble, the first two bytes a multiple of 31) says which it is."""
    wrapped = len(head) >= 2 and head[0] & 0x0F == 8 and ((head[0] << 8) | head[1]) % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)


def _decoded(raw: Iterator[bytes], make: Decoder | None, cap: int) -> Iterator[bytes]:
    """Decompress lazily, never producing more than ``cap`` bytes per step."""
    if make is None:
        yield from raw
        return
    chunks, head = iter(raw), b""
    for chunk in chunks:  # the two bytes that tell the forms of deflate apart
        head += chunk
        if len(head) >= 2:
            break
    decoder = make(head)
    try:
        for chunk in itertools.chain([head], chunks):
            data = decoder.decompress(chunk, cap)
            yield data
            while decoder.unconsumed_tail:
                yield decoder.decompress(decoder.unconsumed_tail, cap)
        yield decoder.flush()
    except zlib.error as e:
        raise httpx.DecodingError(f"corrupt compressed body: {e}") from e
