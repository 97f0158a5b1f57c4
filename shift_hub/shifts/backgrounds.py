"""ImageNet-9 and its variants (the Backgrounds Challenge: Xiao, Engstrom, Ilyas & Madry, ICLR 2021), regenerated
from ILSVRC boxes and object masks with the operations of the generator published with the submission.

Every variant is made on the full-resolution photo (its box blacked out or tiled over, the object masked), then
resized so the shorter side is 256 (NEAREST, torchvision's sizes) and center-cropped to 224, as the released test
images were. The mixed variants paste the object, resized 256 and cropped 256, wherever it is not pure black onto
another selected image's Only-BG-T, resized and cropped alike, then crop 224.

`select` is the one selection rule every variant applies (ShiftSpec.select): the engine calls it before the mask is
made and again with it, so all nine configs (the variants and fg_mask) hold the same images. Boxes are the raw
ILSVRC numbers, inclusive of xmax and ymax, as the original drew them; the engine has checked them against the image
(masks.check_boxes)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..imaging import BadImage

RESIZE, CROP = 256, 224  # the original's Resize(256, NEAREST) and CenterCrop(224); the mixed foreground crops 256
MAX_BOX_IN_CROP = 0.9  # the box may cover at most this share of the 224 crop (else Only-BG is nearly all black)
MIN_BOX_INSIDE = 0.5  # at least this share of the resized box must lie inside the crop
MIN_MASK_IN_BOX = 0.1  # the object mask must cover at least this share of the box (else segmentation failed)


class NotSelected(BadImage):
    """An image ImageNet-9's selection leaves out; the message is the reason the card counts."""


# --- geometry ---------------------------------------------------------------------------------------------------

def resize_nearest(arr: np.ndarray, size: int = RESIZE) -> np.ndarray:
    """Shorter side to `size` with PIL NEAREST, the longer one truncated as torchvision's Resize(int) does."""
    h, w = arr.shape[:2]
    target = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)  # (width, height)
    if target == (w, h):
        return arr
    return np.asarray(Image.fromarray(arr).resize(target, Image.NEAREST))


def center_crop(arr: np.ndarray, size: int) -> np.ndarray:
    """torchvision's CenterCrop on an image at least `size` on both sides."""
    h, w = arr.shape[:2]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return arr[top : top + size, left : left + size]


def finish(arr: np.ndarray) -> np.ndarray:
    """What the released test images went through: resize 256 NEAREST, center crop 224."""
    return np.ascontiguousarray(center_crop(resize_nearest(arr), CROP))


def box_region(shape: tuple[int, int], box) -> np.ndarray:
    """The box's pixels (bool HxW), both ends included, clipped to the image."""
    h, w = shape
    x0, y0, x1, y1 = (int(v) for v in box)
    region = np.zeros((h, w), dtype=bool)
    region[max(0, y0) : max(0, min(h, y1 + 1)), max(0, x0) : max(0, min(w, x1 + 1))] = True
    return region


# --- selection --------------------------------------------------------------------------------------------------

def select(example, image: np.ndarray, mask: np.ndarray | None = None) -> None:
    """Skip (NotSelected, or the masks' own reasons) what the original generator skipped: without `mask`, an
    image outside the IN-9 classes, one without exactly one box, one whose box covers more than 90% of the 224
    crop or has less than half of its resized area inside it; with the mask, one whose mask covers under 10% of
    the box."""
    if mask is None:
        _select_by_box(example, image.shape[:2])
        return
    (x0, y0, x1, y1), = example.boxes
    share = float(np.count_nonzero(mask)) / ((x1 - x0) * (y1 - y0))
    if share < MIN_MASK_IN_BOX:
        raise NotSelected(f"foreground too small: the object mask covers {share:.1%} of the box (ImageNet-9 keeps "
                          f"images whose segmentation covers at least {MIN_MASK_IN_BOX:.0%})")


def _select_by_box(example, shape: tuple[int, int]) -> None:
    from .. import masks
    from ..classes import in9_class

    if in9_class(example.labels) is None:
        raise NotSelected("not an ImageNet-9 class: its labels are none of the IN-9 classes' ImageNet classes")
    info = getattr(example, "box_file", None)
    if example.boxes is None and info is not None and info.error:
        raise masks.MaskUnavailable(info.error)
    count = len(example.boxes or ())
    if count != 1:
        raise NotSelected(f"not exactly one box: {count} boxes (ImageNet-9 keeps images with one)")
    masks.check_boxes(example, example.boxes, shape)
    region = resize_nearest(box_region(shape, example.boxes[0]).view(np.uint8))
    resized, in_crop = int(region.sum()), int(center_crop(region, CROP).sum())
    if in_crop / CROP**2 > MAX_BOX_IN_CROP:
        raise NotSelected(f"box too large: it covers {in_crop / CROP**2:.1%} of the {CROP} crop (ImageNet-9 keeps "
                          f"at most {MAX_BOX_IN_CROP:.0%}, so Only-BG keeps a background)")
    if in_crop < MIN_BOX_INSIDE * resized:
        raise NotSelected(f"box outside the crop: {in_crop / max(resized, 1):.1%} of its area lies in the {CROP} "
                          f"crop (ImageNet-9 keeps at least {MIN_BOX_INSIDE:.0%})")


# --- the operations, at full resolution --------------------------------------------------------------------------

def blackout(image: np.ndarray, box) -> np.ndarray:
    out = image.copy()
    out[box_region(image.shape[:2], box)] = 0
    return out


def tiled_background(image: np.ndarray, box) -> np.ndarray:
    """The image's widest background strip beside the box, repeated from the top-left corner over the image size.

    Left/right strips span the full height, top/bottom strips the full width; the larger area wins, a tie goes to
    the top/bottom strips, and between two equal strips to the right or bottom one. Margins are measured as the
    original did (right = width - xmax), so a right or bottom strip starts on the box's last column or row."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in box)
    left, right, top, bottom = x0, w - x1, y0, h - y1
    if max(left, right) * h > max(top, bottom) * w:
        strip = image[:, : max(0, x0)] if left > right else image[:, max(0, x1) :]
    else:
        strip = image[: max(0, y0)] if top > bottom else image[max(0, y1) :]
    if strip.shape[0] == 0 or strip.shape[1] == 0:
        raise NotSelected("no background strip: the box leaves no margin to tile the background from")
    th, tw = strip.shape[:2]
    return np.tile(strip, (-(-h // th), -(-w // tw), 1))[:h, :w]


def tiled_over_box(image: np.ndarray, box) -> np.ndarray:
    """Only-BG-T at full resolution: the box's pixels replaced by the tiled background."""
    return np.where(box_region(image.shape[:2], box)[..., None], tiled_background(image, box), image)


def _one_box(boxes):
    if not boxes or len(boxes) != 1:  # the engine's selection guarantees one; a direct caller is told
        raise NotSelected(f"not exactly one box: {len(boxes or ())} boxes (ImageNet-9 keeps images with one)")
    return boxes[0]


# --- the variants (ShiftSpec fn: image, rng, mask and boxes from the engine; the GrabCut settings are the
# engine's, accepted and not used here) ----------------------------------------------------------------------------

def original(image, rng, *, mask, boxes, grabcut_iterations=5, grabcut_max_side=0):
    return finish(image)


def only_bg_b(image, rng, *, mask, boxes, grabcut_iterations=5, grabcut_max_side=0):
    return finish(blackout(image, _one_box(boxes)))


def only_bg_t(image, rng, *, mask, boxes, grabcut_iterations=5, grabcut_max_side=0):
    return finish(tiled_over_box(image, _one_box(boxes)))


def no_fg(image, rng, *, mask, boxes, grabcut_iterations=5, grabcut_max_side=0):
    return finish(image * ~np.asarray(mask, bool)[..., None])


def only_fg(image, rng, *, mask, boxes, grabcut_iterations=5, grabcut_max_side=0):
    return finish(image * np.asarray(mask, bool)[..., None])


def fg_mask(image, rng, *, mask, boxes, grabcut_iterations=5, grabcut_max_side=0):
    """The release's fg_mask: the object mask (255 object, 0 elsewhere, one channel) through the same resize and
    crop as the images, so it lies on in9_original's pixels (the challenge composites through it)."""
    return finish(np.asarray(mask, bool).astype(np.uint8) * 255)


def standard(arr: np.ndarray) -> np.ndarray:
    """The mixed variants' intermediate size: resize 256 NEAREST, center crop 256."""
    return center_crop(resize_nearest(arr), RESIZE)


def paste(foreground: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The foreground (256x256) wherever it is not pure black, the background elsewhere: also where the object
    itself is black, as the original's test on black pixels did."""
    return np.where(np.all(foreground == 0, axis=-1)[..., None], background, foreground)


def mixed_image(image, mask, partner: np.ndarray, partner_box) -> np.ndarray:
    fg = standard(image * np.asarray(mask, bool)[..., None])
    return finish(paste(fg, standard(tiled_over_box(partner, partner_box))))


def mixed(image, rng, *, mask, boxes, partners, relation, grabcut_iterations=5, grabcut_max_side=0):
    """Mixed-Same / -Rand / -Next: (image, {"partner_id": the partner's image id})."""
    partner, arr = draw_partner(partners, rng, relation, partners.example)
    return mixed_image(image, mask, arr, partner.boxes[0]), {"partner_id": partner.image_id}


# --- partners ---------------------------------------------------------------------------------------------------

_GROUPS: dict = {}  # id(pool) -> (pool, IN-9 class -> candidates): hashing a 50,000-image pool per image is slow


def candidates_by_class(pool) -> dict[int, list]:
    """The pool's images that can be partners by their metadata alone (an IN-9 class and one box), by class, in
    plan order; the rest of the selection is checked on the partner drawn (Partners.usable)."""
    from ..classes import in9_class

    held = _GROUPS.get(id(pool))
    if held is not None and held[0] is pool:
        return held[1]
    groups: dict[int, list] = {}
    for e in pool:
        c = in9_class(e.labels)
        if c is not None and e.boxes is not None and len(e.boxes) == 1:
            groups.setdefault(c, []).append(e)
    if len(_GROUPS) >= 4:
        _GROUPS.clear()
    _GROUPS[id(pool)] = (pool, groups)
    return groups


def partner_class(relation: str, own: int, present: list[int], rng: np.random.Generator) -> int | None:
    """The IN-9 class the partner comes from, among the classes that have candidates (`present`, sorted)."""
    from ..classes import IN9_CLASSES

    if relation == "same":
        return own if own in present else None
    if relation == "rand":
        return present[int(rng.integers(len(present)))] if present else None
    if relation == "next":
        n = len(IN9_CLASSES)
        return next((c for c in ((own + k) % n for k in range(1, n)) if c in present), None)
    raise ValueError(f"relation must be 'same', 'rand' or 'next', not {relation!r}")


def draw_partner(partners, rng: np.random.Generator, relation: str, example) -> tuple:
    """(partner Example, its decoded image): a class by `relation`, then the first usable image of that class in
    an order drawn with `rng` (so uniform over the usable ones), never the image itself."""
    from ..classes import IN9_CLASSES, in9_class

    groups = candidates_by_class(partners.pool)
    others = {c: [e for e in group if e.image_id != example.image_id] for c, group in groups.items()}
    present = sorted(c for c, group in others.items() if group)
    own = in9_class(example.labels)
    target = partner_class(relation, own, present, rng)
    if target is None:
        wanted = {"same": f"other image of {IN9_CLASSES[own]}", "next": "image of another IN-9 class"}
        raise NotSelected(f"no partner: the plan holds no {wanted.get(relation, 'other image')} with one box to take "
                          "the background from; widen --limit or --classes")
    group = others[target]
    for k in rng.permutation(len(group)):
        arr = partners.usable(group[int(k)])
        if arr is not None:
            return group[int(k)], arr
    raise NotSelected(f"no partner: no image of {IN9_CLASSES[target]} in the plan passes the selection")
