"""The embedded default: real photographs that scikit-image, scikit-learn and matplotlib ship.

Located inside the installed packages (never copied into this repo). Labels are honest: where
several ImageNet-1k classes fit a photo, all are listed, the most specific first.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Iterator

from .. import classes
from .base import Example, Source, SourceError


@dataclass(frozen=True)
class Sample:
    image_id: str
    package: str
    path: str  # inside the package
    wnids: tuple[str, ...]
    license: str  # the photo's licence and attribution, as the shipping package states them
    about: str
    license_id: str = "unknown"  # the Hub's identifier for the card's `license:` field; "other": public domain
    link: str = ""  # where the package documents the photo's origin, when it gives one


MANIFEST = (
    Sample("chelsea", "skimage", "data/chelsea.png", ("n02123045", "n02123159", "n02124075"),
           "CC0 (Stefan van der Walt), per skimage.data.chelsea", "Chelsea the cat: tabby / tiger cat / Egyptian cat",
           "cc0-1.0"),
    Sample("coffee", "skimage", "data/coffee.png", ("n07920052", "n07930864"),
           "CC0 (Rachel Michetti), per skimage.data.coffee", "a cup of espresso on a saucer", "cc0-1.0"),
    Sample("rocket", "skimage", "data/rocket.jpg", ("n03773504", "n04008634"),
           "public domain (SpaceX photos), per skimage.data.rocket", "a Falcon 9 rocket on the launch pad", "other",
           "https://www.flickr.com/photos/spacexphotos/16511594820/"),
    Sample("motorcycle_left", "skimage", "data/motorcycle_left.png", ("n03785016", "n03791053"),
           "Middlebury 2014 stereo benchmark (Scharstein et al.), per skimage.data.stereo_motorcycle", "a motorcycle (ImageNet has no motorcycle class: moped / motor scooter)",
           "unknown"),
    Sample("motorcycle_right", "skimage", "data/motorcycle_right.png", ("n03785016", "n03791053"),
           "Middlebury 2014 stereo benchmark (Scharstein et al.), per skimage.data.stereo_motorcycle", "the same motorcycle, right stereo view",
           "unknown"),
    Sample("camera", "skimage", "data/camera.png", ("n04485082", "n04479046"),
           "CC0 (Lav Varshney), per skimage.data.camera", "a man in an overcoat filming with a camera on a tripod (greyscale)",
           "cc0-1.0", "https://github.com/scikit-image/scikit-image/issues/3927"),
    Sample("china", "sklearn", "datasets/images/china.jpg", ("n03877845",),
           "CC BY 2.0 (danielbuechele on Flickr), per sklearn/datasets/images/README.txt", "the Summer Palace, Beijing", "cc-by-2.0",
           "https://www.flickr.com/photos/danielbuechele/6061409035/"),
    Sample("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", ("n03763968", "n04591157"),
           "public domain (US Navy photograph), shipped in matplotlib's sample_data", "Grace Hopper in naval uniform with a tie", "other"),
)


def _package_dir(package: str) -> Path:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(f"the samples source reads photos shipped by {package!r}: `pip install {package}` "
                          "(shift_hub's own install brings it)")
    return Path(list(spec.submodule_search_locations)[0])


class Samples(Source):
    name = "samples"

    def examples(self) -> Iterator[Example]:
        for sample in MANIFEST:
            path = _package_dir(sample.package) / sample.path
            if not path.is_file():
                raise SourceError(f"{path}: sample photo missing from the installed {sample.package}; reinstall it")
            labels = tuple(classes.index_of(w) for w in sample.wnids)
            yield Example(sample.image_id, labels, str(path))

    def describe(self) -> str:
        return "samples (real photos shipped inside scikit-image, scikit-learn and matplotlib)"
