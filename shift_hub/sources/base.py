"""The one interface every source implements: lightweight Examples, bytes read on demand.

Examples carry a locator instead of pixels so a plan of 50,000 images is cheap to build, to
sort and to send to worker processes; a source must therefore be picklable and reopen lazily.
"""
from __future__ import annotations

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


class Source:
    name = "source"

    def examples(self) -> Iterator[Example]:
        raise NotImplementedError

    def read(self, example: Example) -> bytes:
        path = Path(example.locator)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from None

    def describe(self) -> str:
        return self.name
