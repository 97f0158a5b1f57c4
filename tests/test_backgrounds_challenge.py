"""The Backgrounds Challenge's score (challenge_eval.py / adv_bgs_eval_model, restated): in9_fg_mask, the release's
fg_mask, stored and never scored as top-1; every in9_original foreground pasted through it onto in9_only_bg_t
backgrounds, vulnerable iff some composite's IN-9 prediction is not its class. Folders here are a few 8x8 images
written by hand and scored by a lookup stub that predicts from a composite's pixels, so each verdict is known."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

import shift_hub
from shift_hub.evaluation import backgrounds_challenge as bc
from shift_hub.evaluation import labels as L
from shift_hub.evaluation.runner import DataError, open_data, run
from shift_hub.registry import REGISTRY, groups

from conftest import linear_stub

DOG, BIRD, VEHICLE = 207, L.IN9_INDICES["bird"][0], L.IN9_INDICES["wheeled vehicle"][0]
IN9 = {DOG: L.IN9_CLASSES.index("dog"), BIRD: L.IN9_CLASSES.index("bird"),
       VEHICLE: L.IN9_CLASSES.index("wheeled vehicle")}
# the stub's table: the foreground's key (its centre's green / 20) -> the ImageNet class it predicts; key 4 is a
# bird the model takes for a dog, whatever the background
TABLE = [281, DOG, BIRD, VEHICLE, DOG]
# image id -> (label, key of its foreground, its background: "plain" or "blue", which the stub reads as a bird)
IMAGES = {"a": (DOG, 1, "plain"), "b": (BIRD, 2, "blue"), "c": (VEHICLE, 3, "plain"), "d": (BIRD, 4, "plain"),
          "e": (DOG, 1, "plain"), "f": (VEHICLE, 3, "blue")}


class Lookup:
    """The stub's rule on an 8x8 input: a blue corner (0, 0) is a bird, else the table at the centre (4, 4)'s key."""

    def __new__(cls):
        import torch

        class Net(torch.nn.Module):
            def forward(self, x):
                key = torch.round(x[:, 1, 4, 4] * 255 / 20).long()
                pred = torch.where(x[:, 2, 0, 0] > 0.5, torch.tensor(BIRD), torch.tensor(TABLE)[key])
                return torch.nn.functional.one_hot(pred, 1000).float()

        return Net()


def hand_pred(fg: str, bg: str) -> int:
    """The stub's IN-9 prediction for foreground `fg` pasted onto `bg`'s background, restated by hand."""
    return IN9[BIRD] if IMAGES[bg][2] == "blue" else IN9[TABLE[IMAGES[fg][1]]]


def number(image_id: str) -> int:
    return sum(map(ord, image_id))


def background(image_id: str) -> np.ndarray:
    colour = (0, 0, 250) if IMAGES[image_id][2] == "blue" else (number(image_id) % 100, 60, 90)
    return np.tile(np.array(colour, np.uint8), (8, 8, 1))


def fg_mask(image_id: str) -> np.ndarray:
    """Each image its own mask: the centre square and a few pixels of its own; (0, 0) out, (4, 4) in."""
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    extra = np.random.default_rng(number(image_id)).random((8, 8)) < 0.25
    mask |= extra
    mask[0, 0], mask[4, 4] = False, True
    return mask


def original(image_id: str) -> np.ndarray:
    key = IMAGES[image_id][1]
    centre = np.tile(np.array((200, 20 * key, 10), np.uint8), (8, 8, 1))
    texture = (np.arange(64, dtype=np.uint8).reshape(8, 8, 1) % 7)  # pixels differ, the stub's two do not
    return np.where(fg_mask(image_id)[..., None], centre + texture * (centre < 200), background(image_id))


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def write_config(root, config: str, ids, image) -> None:
    """One parquet shard of `config` holding `image(id)` for `ids`, in that order, with the fixture labels."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / config).mkdir(parents=True, exist_ok=True)
    ids = list(ids)
    pq.write_table(pa.table({
        "image": [{"bytes": png(image(i)), "path": f"{i}.png"} for i in ids],
        "label": [IMAGES.get(i, (DOG,))[0] for i in ids], "labels": [[IMAGES.get(i, (DOG,))[0]] for i in ids],
        "image_id": ids,
        "config": [config] * len(ids), "severity": [0] * len(ids)}),
        root / config / "validation-00000-of-00001.parquet")


def write_folder(root, skip=(), mask_ids=None):
    """in9_original in id order, in9_only_bg_t reversed and in9_fg_mask rotated (the challenge matches by id)."""
    ids = sorted(IMAGES)
    write_config(root, "in9_original", ids, original)
    write_config(root, "in9_only_bg_t", ids[::-1], background)
    if "in9_fg_mask" not in skip:
        write_config(root, "in9_fg_mask", mask_ids or ids[2:] + ids[:2], lambda i: (fg_mask(i) * 255).astype(np.uint8))
    return root


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "in9")


def hand_verdicts(n: int, seed: int = 0) -> dict[str, bool]:
    """Vulnerable per foreground: some of its drawn backgrounds (positions in in9_only_bg_t's row order) flips it."""
    bg_ids = sorted(IMAGES)[::-1]
    out = {}
    for fg in sorted(IMAGES):
        drawn = [bg_ids[k] for k in bc.draw_backgrounds(seed, fg, len(bg_ids), n)]
        out[fg] = any(hand_pred(fg, bg) != IN9[IMAGES[fg][0]] for bg in drawn)
    return out


def challenge_of(folder, n: int, seed: int = 0) -> bc.Challenge:
    held: list = []
    _, parts = open_data(folder, ["backgrounds"], held=held)
    return bc.prepare(parts, held, n, seed)


def stub_round(workers: int = 0):
    classifier = linear_stub(Lookup())
    return lambda part: run(classifier, [part], num_workers=workers)


# --- the composite ------------------------------------------------------------------------------------------------

def test_the_composite_is_the_original_where_its_mask_is_set_and_the_background_elsewhere(folder):
    rng = np.random.default_rng(0)
    image, bg = rng.integers(0, 256, (2, 6, 5, 3), dtype=np.uint8)
    mask = rng.random((6, 5)) < 0.5
    by_hand = bg.copy()
    for y in range(6):
        for x in range(5):
            if mask[y, x]:
                by_hand[y, x] = image[y, x]
    assert np.array_equal(bc.composite(image, mask, bg), by_hand)
    m = mask[..., None].astype(np.float64)  # the original's tensors: bg * (1 - mask) + mask * image
    assert np.array_equal(bc.composite(image, mask, bg), (bg * (1 - m) + m * image).astype(np.uint8))
    challenge = challenge_of(folder, 0)
    items = [(f, k) for f in range(6) for k in range(6)]
    part = bc.composite_part(challenge, items)
    bg_ids = sorted(IMAGES)[::-1]
    for i, (f, k) in enumerate(items):
        fg = sorted(IMAGES)[f]
        got = np.asarray(part.dataset[i]["image"])
        assert np.array_equal(got, np.where(fg_mask(fg)[..., None], original(fg), background(bg_ids[k]))), (fg, k)
        assert part.image_ids[i] == f"{fg}+{bg_ids[k]}" and part.labels[i] == [IMAGES[fg][0]]
    assert part.space.name == "imagenet-9" and part.name == "in9_challenge"


# --- the verdicts -------------------------------------------------------------------------------------------------

def test_a_foreground_is_vulnerable_iff_some_drawn_background_changes_its_in9_prediction(folder):
    expected = hand_verdicts(2)
    assert True in expected.values() and False in expected.values()  # the draw leaves some foregrounds unflipped
    challenge = challenge_of(folder, 2)
    flags, scored = bc.verdicts(challenge, stub_round())
    assert dict(zip(sorted(IMAGES), flags)) == expected
    result = shift_hub.evaluate(linear_stub(Lookup()), folder, ["backgrounds"], num_workers=0, bootstrap=50,
                                backgrounds_challenge=2)
    c = result.summary["imagenet_9"]["challenge"]
    assert (c["foregrounds"], c["backgrounds"], c["backgrounds_per_foreground"]) == (6, 6, 2)
    assert c["vulnerable"] == sum(expected.values()) and c["vulnerable_share"] == pytest.approx(c["vulnerable"] / 6)
    assert c["ci"]["vulnerable_share"]["ci_low"] <= c["vulnerable_share"] <= c["ci"]["vulnerable_share"]["ci_high"]
    assert c["seed"] == 0 and "every" in c["note"] and "lower bound" in c["note"]
    assert result.results["options"]["backgrounds_challenge"] == 2


def test_every_background_when_n_is_zero_or_at_least_their_number(folder):
    assert np.array_equal(bc.draw_backgrounds(0, "a", 6, 0), np.arange(6))
    assert np.array_equal(bc.draw_backgrounds(0, "a", 6, 6), np.arange(6))
    assert np.array_equal(bc.draw_backgrounds(3, "a", 6, 99), np.arange(6))
    # with every background: only the bird on a bird-coloured or plain background resists (b: key 2, a bird)
    assert hand_verdicts(0) == {"a": True, "b": False, "c": True, "d": True, "e": True, "f": True}
    for n in (0, 6, 50):
        result = shift_hub.evaluate(linear_stub(Lookup()), folder, ["backgrounds"], num_workers=0, bootstrap=0,
                                    backgrounds_challenge=n)
        c = result.summary["imagenet_9"]["challenge"]
        assert (c["vulnerable"], c["backgrounds_per_foreground"], c["requested"]) == (5, 6, n)
        assert c["note"] == bc.NOTE_ALL and "ci" not in c
    assert "every one of the 6 in9_only_bg_t backgrounds" in result.markdown()


def test_none_counts_as_a_flip_and_rounds_stop_at_the_first_flip_without_changing_a_verdict(folder):
    """Predictions outside IN-9 (index 9, "none") are never the foreground's class, as in the original's -1."""
    challenge = challenge_of(folder, 0)
    asked: list = []

    def fake(part):  # "none" for foreground d on the third background, the class elsewhere
        asked.append(len(part.image_ids))
        return [{"pred": 9 if i.startswith("d+") and i.endswith("+" + sorted(IMAGES)[::-1][2]) else
                 IN9[IMAGES[i[0]][0]]} for i in part.image_ids]

    expected = {"a": False, "b": False, "c": False, "d": True, "e": False, "f": False}
    for width in (1, 4, 10**6):
        asked.clear()
        flags, scored = bc.verdicts(challenge, fake, round_items=width)
        assert dict(zip(sorted(IMAGES), flags)) == expected, width
        assert scored == sum(asked)
    flags, scored = bc.verdicts(challenge, fake, round_items=6)  # one background per foreground a round
    assert scored == 5 * 6 + 3  # d stops after its third background


# --- the draw -----------------------------------------------------------------------------------------------------

def test_the_draw_is_seeded_per_foreground_and_the_same_for_any_worker_count(folder):
    a = bc.draw_backgrounds(0, "a", 1000, 10)
    assert np.array_equal(a, bc.draw_backgrounds(0, "a", 1000, 10)) and len(set(a.tolist())) == 10
    assert not np.array_equal(a, bc.draw_backgrounds(1, "a", 1000, 10))
    assert not np.array_equal(a, bc.draw_backgrounds(0, "b", 1000, 10))
    runs = [shift_hub.evaluate(linear_stub(Lookup()), folder, ["backgrounds"], num_workers=w, bootstrap=20,
                               backgrounds_challenge=3).summary["imagenet_9"]["challenge"] for w in (0, 2)]
    assert runs[0] == runs[1] and runs[0]["vulnerable"] == sum(hand_verdicts(3).values())
    other = shift_hub.evaluate(linear_stub(Lookup()), folder, ["backgrounds"], num_workers=0, bootstrap=0,
                               backgrounds_challenge=3, seed=5).summary["imagenet_9"]["challenge"]
    assert other["seed"] == 5 and other["vulnerable"] == sum(hand_verdicts(3, seed=5).values())


# --- refusals -----------------------------------------------------------------------------------------------------

class NeverForward:
    """A model that must not run: the refusals come before any image is scored."""

    def __new__(cls):
        import torch

        class Net(torch.nn.Module):
            def forward(self, x):
                raise AssertionError("the model ran before the data was checked")

        return Net()


def test_missing_configs_and_different_images_are_refused_in_one_line_before_the_model_runs(tmp_path):
    def refused(folder, configs=("backgrounds",), n=2) -> str:
        with pytest.raises(DataError) as info:
            shift_hub.evaluate(linear_stub(NeverForward()), folder, list(configs), num_workers=0,
                               backgrounds_challenge=n)
        assert "\n" not in str(info.value)
        return str(info.value)

    no_mask = write_folder(tmp_path / "no_mask", skip=("in9_fg_mask",))
    assert "missing: in9_fg_mask" in refused(no_mask)
    assert "missing: in9_only_bg_t" in refused(write_folder(tmp_path / "all"), ["in9_original", "in9_fg_mask"])
    other = write_folder(tmp_path / "other", mask_ids=["a", "b", "c", "d", "e", "z"])
    said = refused(other)
    assert "in9_fg_mask and in9_original hold different images" in said and "only in in9_fg_mask: z" in said
    assert "only in in9_original: f" in said
    assert "no images to classify" in refused(tmp_path / "all", ["in9_fg_mask"], n=None)
    with pytest.raises(DataError, match="integer >= 0"):
        shift_hub.evaluate(linear_stub(NeverForward()), tmp_path / "all", num_workers=0, backgrounds_challenge=-1)


# --- in9_fg_mask is never a top-1 --------------------------------------------------------------------------------

def test_in9_fg_mask_is_never_among_the_per_config_accuracies_or_the_eval_yaml_tasks(folder):
    from shift_hub.evaluation.eval_results import task_values
    from shift_hub.hub.eval_yaml import build, catalogue, markdown_table

    spec = REGISTRY["in9_fg_mask"]
    assert not spec.scored and spec.group == "backgrounds" and "in9_fg_mask" in groups()["backgrounds"]
    assert all(REGISTRY[c].scored for c in REGISTRY if c != "in9_fg_mask")
    for n in (None, 2):
        result = shift_hub.evaluate(linear_stub(Lookup()), folder, ["backgrounds"], num_workers=0, bootstrap=0,
                                    backgrounds_challenge=n)
        results = result.results
        assert "in9_fg_mask" not in results["metrics"] and "in9_fg_mask" not in results["data"]["configs"]
        assert "in9_challenge" not in results["metrics"] and results["data"]["unscored_configs"] == ["in9_fg_mask"]
        assert {r["config"] for r in result.rows} == {"in9_original", "in9_only_bg_t"}
        assert "| in9_fg_mask" not in result.markdown()
        assert not any("in9_fg_mask" in k for k in task_values(results))
        assert ("challenge" in results["summary"].get("imagenet_9", {})) == (n is not None)
    assert not [t for t in catalogue() if "in9_fg_mask" in t[2]] and "in9_fg_mask" not in markdown_table()
    tasks = build(groups()["backgrounds"])["tasks"]
    assert all("in9_fg_mask" not in (t.get("config"), *t.get("configs", ())) for t in tasks)


def test_in9_fg_mask_is_the_grabcut_mask_through_in9_originals_geometry_stored_losslessly(tmp_path):
    """Generated beside in9_original: the same images, each row the full-image mask resized 256 NEAREST and cropped
    224 (torchvision's transforms, as the release's images), 0/255 in a PNG; the card names it the release's fg_mask."""
    import pyarrow.parquet as pq

    from shift_hub import generate as engine
    from shift_hub import masks
    from shift_hub.sources import Example
    from test_backgrounds import PhotoSource, tv_test

    spec, base = REGISTRY["in9_fg_mask"], REGISTRY["in9_original"]
    same = ("geometry", "select", "params", "needs", "group")
    assert [getattr(spec, k) for k in same] == [getattr(base, k) for k in same]
    assert spec.encoding.format == "PNG" and "JPEG" not in spec.deviation and "fg_mask" in spec.description
    source = PhotoSource()
    source.items = [i for i in source.items if i[0] in ("coffee", "grace_hopper", "chelsea")]
    engine.generate(["in9_original", "in9_fg_mask"], source, tmp_path, progress=False)
    stored = {c: pq.read_table(tmp_path / c / "validation-00000-of-00001.parquet").to_pylist()
              for c in ("in9_original", "in9_fg_mask")}
    assert [r["image_id"] for r in stored["in9_fg_mask"]] == [r["image_id"] for r in stored["in9_original"]] \
        == ["coffee", "grace_hopper"]
    options = masks.spec_options(spec, masks.MaskOptions())
    for row, (name, label, arr, boxes) in zip(stored["in9_fg_mask"], source.items):
        got = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))
        mask = masks.compute_mask(Example(name, (label,), 0, boxes), arr, options)
        expected = tv_test(Image.fromarray(mask.astype(np.uint8) * 255))
        assert row["image"]["path"].endswith(".png") and got.shape == (224, 224) and set(np.unique(got)) <= {0, 255}
        assert np.array_equal(got, expected), name
    card = (tmp_path / "README.md").read_text()
    assert "in9_fg_mask" in card and "release's fg_mask" in card


# --- through the CLI ----------------------------------------------------------------------------------------------

def test_cli_prints_and_writes_the_challenge_score(folder, tmp_path, capsys):
    from shift_hub import cli

    assert cli.main(["evaluate", "efficientnet_lite0", "--data", str(folder), "--configs", "backgrounds",
                     "--backgrounds-challenge", "2", "--bootstrap", "20", "--num-workers", "0", "--no-plots",
                     "--quiet", "--out", str(tmp_path / "res")]) == 0
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "res" / "results.json").read_text())
    c = results["summary"]["imagenet_9"]["challenge"]
    assert c["foregrounds"] == 6 and c["backgrounds_per_foreground"] == 2 and 0 <= c["vulnerable"] <= 6
    assert "Backgrounds Challenge:" in printed and "2 of the 6 in9_only_bg_t backgrounds drawn" in printed
    assert "Backgrounds Challenge" in (tmp_path / "res" / "report.html").read_text()
    with pytest.raises(SystemExit) as exited:  # argparse refuses the value, in one line
        cli.main(["evaluate", "--data", str(folder), "--backgrounds-challenge", "-1"])
    assert exited.value.code == 2 and "--backgrounds-challenge" in capsys.readouterr().err


def test_a_mask_that_cannot_be_decoded_leaves_its_foreground_out_and_says_so(tmp_path):
    root = write_folder(tmp_path / "in9")
    ids = sorted(IMAGES)
    mask_ids = ids[2:] + ids[:2]
    write_config(root, "in9_fg_mask", mask_ids, lambda i: (fg_mask(i) * 255).astype(np.uint8))
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = root / "in9_fg_mask" / "validation-00000-of-00001.parquet"
    table = pq.read_table(path)
    cells = table.column("image").to_pylist()
    cells[mask_ids.index("c")] = {"bytes": b"not a png", "path": "c.png"}
    pq.write_table(table.set_column(0, "image", pa.array(cells, type=table.schema.field("image").type)), path)
    result = shift_hub.evaluate(linear_stub(Lookup()), root, ["backgrounds"], num_workers=0, bootstrap=0,
                                backgrounds_challenge=0)
    c = result.summary["imagenet_9"]["challenge"]
    assert c["foregrounds"] == 5 and c["left_out"] == {"in9_fg_mask": ["c"]}
    assert [e["image_id"] for e in result.results["unreadable"]["in9_fg_mask"]["images"]] == ["c"]
