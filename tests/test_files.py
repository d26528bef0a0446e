"""files: a named file is read only up to its limit, whatever it is (a device, a huge log)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.files import TooLarge, read_at_most, shown_size


def test_a_file_of_exactly_the_limit_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_at_most(path, 100) == b"x" * 100
    with pytest.raises(TooLarge) as caught:
        read_at_most(path, 99)
    assert (caught.value.path, caught.value.limit, str(caught.value)) == (path, 99, "larger than 99 bytes")


def test_an_endless_device_is_read_only_to_the_limit() -> None:
    with pytest.raises(TooLarge, match="larger than 1 MiB"):
        read_at_most(Path("/dev/zero"), 2**20)


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (2 * 2**20, "2 MiB"),
        (64 * 2**10, "64 KiB"),
        (1536, "1536 bytes"),
        (3 * 2**20 + 2**10, "3073 KiB"),
        (0, "0 bytes"),
    ],
)
def test_sizes_are_shown_as_people_write_them(size: int, shown: str) -> None:
    assert shown_size(size) == shown
