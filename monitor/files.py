"""Reading a file someone named (a config, a secret, an OPML export, an article) without
letting its size decide how much memory monitor takes: ``/dev/zero`` or a log passed
by mistake is read only up to the limit, then refused."""

from __future__ import annotations

from pathlib import Path
from typing import IO, AnyStr


class TooLarge(ValueError):
    """The file (or stream) holds more than ``limit`` bytes (nothing past the limit was read)."""

    def __init__(self, path: Path | str, limit: int) -> None:
        self.path = path
        self.limit = limit
        super().__init__(f"larger than {shown_size(limit)}")


def read_at_most(path: Path, limit: int) -> bytes:
    """The file's bytes; TooLarge past ``limit``. OSError is the caller's to word."""
    with path.open("rb") as file:
        return read_stream_at_most(file, limit, path)


def read_stream_at_most(stream: IO[AnyStr], limit: int, name: Path | str) -> AnyStr:
    """What ``stream`` holds (standard input, an open file); TooLarge past ``limit``
    (counted in characters for a text stream)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(name, limit)
    return data


def shown_size(size: int) -> str:
    """``2 MiB``, ``64 KiB``, ``100 bytes``: the limit as a person writes it."""
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"
