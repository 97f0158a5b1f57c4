"""The one interface every source implements: lightweight Examples, bytes read on demand.

Examples carry a locator instead of pixels so a plan of 50,000 images is cheap to build, to
sort and to send to worker processes; a source must therefore be picklable and reopen lazily.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

Box = tuple[int, int, int, int]  # xmin, ymin, xmax, ymax in source pixels


@dataclass(frozen=True)
class Example:
    image_id: str
    labels: tuple[int, ...]  # ImageNet-1k indices, the first is the primary label; may be empty
    locator: str | int  # a path, or a row index for table sources
    boxes: tuple[Box, ...] | None = None

    @property
    def label(self) -> int:
        return self.labels[0] if self.labels else -1


class SourceError(ValueError):
    """A source that cannot be read; the message names the file and the fix."""


def read_file(path: str | Path) -> bytes:
    """Bytes of a file; a failure is a SourceError whose text is stable: the engine stores it next to the
    image id in the shard footer and the card, which must not depend on where the data is mounted, so
    it names the file but not its folder (kind first, details after the colon, as the card groups them)."""
    from ..imaging import stable_reason

    try:
        return Path(path).read_bytes()
    except OSError as exc:
        detail = exc.strerror or stable_reason(exc) or type(exc).__name__
        raise SourceError(f"cannot read the file ({detail}): {Path(path).name}") from None


def printable_name(name: str) -> str:
    """A file name as valid UTF-8 text: the bytes that are not UTF-8 (which the OS hands Python as lone
    surrogates) written as `\\xff` escapes, so ids, footers and cards can hold it."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def is_utf8_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


NOT_UTF8 = "file name is not valid UTF-8 (rename the file to include it)"


def not_utf8_reason(name: str) -> str:
    """The skip reason of an image whose file name is not UTF-8 (a parquet id must be): names it, escaped."""
    return f"{NOT_UTF8}: {printable_name(name)}"


class Source:
    name = "source"

    def examples(self) -> Iterator[Example]:
        raise NotImplementedError

    def read(self, example: Example) -> bytes:
        """The file's bytes, or SourceError with a reason the engine records next to the image id."""
        return read_file(example.locator)

    def describe(self) -> str:
        return self.name
