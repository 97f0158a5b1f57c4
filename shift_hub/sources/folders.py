"""Class folders: `<root>/<wnid>/*.JPEG`, the layout of ImageNet train/val after the usual re-sort."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .. import classes
from .base import Example, Source, SourceError, is_utf8_name, not_utf8_reason, printable_name, read_file

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


class Folders(Source):
    name = "folders"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def examples(self) -> Iterator[Example]:
        if not self.root.is_dir():
            raise SourceError(f"{self.root}: not a directory; expected <root>/<wnid>/*.JPEG")
        index = classes.wnid_to_index()
        dirs = sorted(d for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        unknown = [d.name for d in dirs if d.name not in index]
        if unknown:
            raise SourceError(f"{self.root}: folders {unknown[:5]} are not ImageNet-1k WNIDs; "
                              "class folders must be named like n01440764")
        if not dirs:
            raise SourceError(f"{self.root}: no class folders; expected <root>/<wnid>/*.JPEG")
        for d in dirs:
            for path in sorted(d.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    yield Example(f"{d.name}/{printable_name(path.stem)}", (index[d.name],), str(path))

    def read(self, example: Example) -> bytes:
        """The file's bytes; an image whose name is not UTF-8 is skipped (with a reason naming it) so the
        rest of the folder is still generated."""
        name = Path(example.locator).name
        if not is_utf8_name(name):
            raise SourceError(not_utf8_reason(name))
        return read_file(example.locator)

    def describe(self) -> str:
        return f"class folders ({printable_name(self.root.resolve().name)})"
