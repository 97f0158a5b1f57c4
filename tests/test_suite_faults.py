"""The robustness suite on damaged set folders: each set is read on its own, what cannot be read is
skipped and listed by its path under --root with a stable reason, a set with nothing readable is
reported as such, and the report is always written. Tiny layouts; the colour-code stub of
test_known_sets predicts the class written in each image's colour."""
from __future__ import annotations

import json
import os

import pytest

from shift_hub import classes
from shift_hub.evaluation import protocols
from shift_hub.evaluation.suite import run_suite
from test_known_sets import A, W, save, stub, write_video

R = classes.subset("imagenet_r")
NOT_R = 0  # class index 0 (tench) is not among ImageNet-R's 200
assert NOT_R not in R


def garbage(path, text: bytes = b"this is not an image\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text)


def loop(path) -> None:
    """A symlink pointing at itself: stat() fails with ELOOP."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(path.name, path)


def suite(root, out=None, **kw):
    return run_suite(stub(), root, out=out, num_workers=0, batch_size=4, **kw)


def stable(results, root) -> None:
    """No reason or listed path names the temporary folder, a memory address or an object repr."""
    text = json.dumps({k: v for k, v in results["sets"].items()})
    assert "0x" not in text and " object at " not in text
    for s in results["sets"].values():
        for what in ("skipped", "excluded"):
            for item in s[what]["items"]:
                assert not item["path"].startswith("/") and str(root) not in item["reason"]


# ----------------------------------------------------------------------------------------------
# item 8: unreadable entries are skipped per set, named by path and reason
# ----------------------------------------------------------------------------------------------

def test_non_image_jpg_in_imagenet_r_is_skipped_and_named(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    save(root / "imagenet-r" / W[R[0]] / "good.jpg", R[0])
    garbage(root / "imagenet-r" / W[R[0]] / "bad.jpg")
    save(root / "imagenet-a" / W[A[0]] / "a.jpg", A[0])
    results = suite(root, out)
    r = results["sets"]["imagenet-r"]
    assert (r["images"], r["top1"]) == (1, 1.0)
    assert r["skipped"]["total"] == 1
    item, = r["skipped"]["items"]
    assert item["path"] == f"imagenet-r/{W[R[0]]}/bad.jpg"
    assert item["reason"] == "UnidentifiedImageError: cannot identify image file"
    assert r["skipped"]["by_reason"] == {item["reason"]: 1}
    assert results["sets"]["imagenet-a"]["top1"] == 1.0
    stable(results, root)
    saved = json.loads((out / "robustness.json").read_text())
    assert saved["sets"]["imagenet-r"]["skipped"]["by_reason"] == {item["reason"]: 1}
    table = (out / "robustness.md").read_text()
    assert (f"| ImageNet-R | skipped | UnidentifiedImageError: cannot identify image file | 1 | "
            f"imagenet-r/{W[R[0]]}/bad.jpg |") in table


def test_corrupt_mp4_skips_its_sequence_and_the_report_is_written(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    save(root / "imagenet-a" / W[A[0]] / "a.jpg", A[0])
    p = root / "imagenet-p" / "gaussian_noise" / W[6]
    write_video(p / "good.mp4", [6, 6, 9, 6])
    garbage(p / "bad.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    results = suite(root, out)
    sets = results["sets"]
    assert sets["imagenet-a"]["top1"] == 1.0
    per = sets["imagenet-p"]["per_perturbation"]["gaussian_noise"]
    assert (per["sequences"], per["frames"]) == (1, 4)
    assert per["flip_probability"] == pytest.approx(1 / 3)  # the good video alone, as in test_known_sets
    item, = sets["imagenet-p"]["skipped"]["items"]
    assert item == {"path": f"imagenet-p/gaussian_noise/{W[6]}/bad.mp4",
                    "reason": "no frames could be decoded (a damaged video, or OpenCV without FFmpeg)"}
    assert (out / "robustness.json").is_file() and (out / "robustness.md").is_file()
    assert "| ImageNet-P | skipped | no frames could be decoded" in (out / "robustness.md").read_text()


def test_damaged_frame_image_drops_its_sequence_not_the_set(tmp_path):
    root = tmp_path / "root"
    t = root / "imagenet-p" / "translate" / W[6]
    for k, code in enumerate([6, 9, 9, 6]):
        save(t / "seq0" / f"{k:03d}.png", code)
        save(t / "seq1" / f"{k:03d}.png", code)
    garbage(t / "seq1" / "002.png")
    results = suite(root)
    p = results["sets"]["imagenet-p"]
    assert p["per_perturbation"]["translate"]["sequences"] == 1
    assert p["per_perturbation"]["translate"]["flip_probability"] == pytest.approx(2 / 3)
    assert p["skipped"]["items"] == [{"path": f"imagenet-p/translate/{W[6]}/seq1/002.png",
                                      "reason": "frame image cannot be decoded (UnidentifiedImageError)"}]


def test_symlink_loops_and_junk_folders_are_skipped_in_every_layout(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    r = root / "imagenet-r"
    save(r / W[R[0]] / "good.jpg", R[0])
    loop(r / W[R[0]] / "loop.jpg")
    loop(r / W[R[1]])  # a class folder that is a loop
    save(r / "junk" / "x.jpg", R[0])
    v2 = root / "imagenetv2-matched-frequency-format-val"
    save(v2 / "5" / "a.jpeg", 5)
    save(v2 / "junk" / "b.jpeg", 5)
    c = root / "imagenet-c"
    save(c / "gaussian_noise" / "1" / W[6] / "x.JPEG", 6)
    save(c / "gaussian_noise" / "1" / "junk" / "y.JPEG", 6)
    (c / "junk").mkdir()
    loop(c / "gaussian_noise" / "1" / W[6] / "z.JPEG")
    p = root / "imagenet-p" / "gaussian_noise"
    write_video(p / W[6] / "v.mp4", [6, 6, 9, 6])
    (p / "junk").mkdir()
    loop(p / W[6] / "w.mp4")
    results = suite(root, out)
    sets = results["sets"]

    def reasons(key):
        return {i["path"]: i["reason"] for i in sets[key]["skipped"]["items"]}

    assert (sets["imagenet-r"]["images"], sets["imagenet-r"]["top1"]) == (1, 1.0)
    assert reasons("imagenet-r") == {
        f"imagenet-r/{W[R[0]]}/loop.jpg": "symlink loop",
        f"imagenet-r/{W[R[1]]}": "symlink loop",
        "imagenet-r/junk": "not a class folder (not an ImageNet-1k WNID such as n01440764)"}
    assert sets["imagenet-r"]["skipped"]["by_reason"] == {
        "symlink loop": 2, "not a class folder (not an ImageNet-1k WNID such as n01440764)": 1}
    assert sets["imagenet-v2-matched-frequency"]["top1"] == 1.0
    assert reasons("imagenet-v2-matched-frequency") == {
        "imagenetv2-matched-frequency-format-val/junk": "not a class folder (not a class index 0..999)"}
    assert sets["imagenet-c"]["images"] == 1
    assert reasons("imagenet-c") == {
        "imagenet-c/junk": "not a corruption folder (no 1-5 inside)",
        "imagenet-c/gaussian_noise/1/junk": "not a class folder (not an ImageNet-1k WNID such as n01440764)",
        f"imagenet-c/gaussian_noise/1/{W[6]}/z.JPEG": "symlink loop"}
    assert sets["imagenet-p"]["per_perturbation"]["gaussian_noise"]["sequences"] == 1
    assert reasons("imagenet-p") == {
        "imagenet-p/gaussian_noise/junk": "not a class folder (not an ImageNet-1k WNID such as n01440764)",
        f"imagenet-p/gaussian_noise/{W[6]}/w.mp4": "symlink loop"}
    stable(results, root)
    table = (out / "robustness.md").read_text()
    assert "| ImageNet-R | skipped | symlink loop | 2 |" in table


def test_a_set_with_nothing_readable_is_reported_and_the_others_scored(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    save(root / "imagenet-a" / W[A[0]] / "a.jpg", A[0])
    save(root / "sketch" / "junk" / "s.JPEG", 3)  # no class folder at all
    garbage(root / "imagenet-r" / W[R[0]] / "bad.jpg")  # a class folder, but no decodable image
    garbage(root / "imagenet-p" / "gaussian_noise" / W[6] / "bad.mp4")
    loop(root / "imagenet-o")  # the set folder itself
    results = suite(root, out)
    sets = results["sets"]
    assert sets["imagenet-a"]["top1"] == 1.0
    assert sets["imagenet-sketch"]["unreadable"] == ("no class folders named by an ImageNet-1k WNID such as "
                                                     "n01440764 (found ['junk'])")
    assert sets["imagenet-sketch"]["skipped"]["items"] == [
        {"path": "sketch/junk", "reason": "not a class folder (not an ImageNet-1k WNID such as n01440764)"}]
    assert sets["imagenet-r"]["unreadable"] == "no image could be read"
    assert sets["imagenet-r"]["skipped"]["total"] == 1
    assert sets["imagenet-p"]["unreadable"] == "no sequence could be read"
    assert sets["imagenet-p"]["skipped"]["items"][0]["path"] == f"imagenet-p/gaussian_noise/{W[6]}/bad.mp4"
    assert sets["imagenet-o"]["unreadable"] == "cannot list the folder (symlink loop)"
    assert set(results["found"]) == {"imagenet-a", "imagenet-sketch", "imagenet-r", "imagenet-p", "imagenet-o"}
    saved = json.loads((out / "robustness.json").read_text())
    assert saved["sets"]["imagenet-p"]["unreadable"] == "no sequence could be read"
    table = (out / "robustness.md").read_text()
    assert "| ImageNet-R | top-1 over its 200 classes (masked logits) | 0 | cannot be read | - |" in table
    assert "| ImageNet-P | whole set | no sequence could be read | - | - |" in table
    assert any(n.startswith("ImageNet-Sketch could not be read: no class folders") for n in results["notes"])


def test_readers_list_what_they_leave_out(tmp_path):
    from shift_hub.sources.known import ClassFolders, ImageNetC, ImageNetP, ImageNetV2

    save(tmp_path / "v2" / "5" / "a.jpeg", 5)
    garbage(tmp_path / "v2" / "5" / "notes.txt")
    (tmp_path / "v2" / "junk").mkdir()
    v2 = ImageNetV2(tmp_path / "v2", "matched-frequency")
    assert [e.image_id for e in v2.examples()] == ["5/a"]
    assert sorted((os.path.basename(s.path), s.reason) for s in v2.skipped) == [
        ("junk", "not a class folder (not a class index 0..999)"), ("notes.txt", "not an image file (.txt)")]
    save(tmp_path / "f" / W[1] / "a.jpg", 1)
    loop(tmp_path / "f" / W[1] / "b.jpg")
    folders = ClassFolders(tmp_path / "f")
    assert len(list(folders.examples())) == 1 and [s.reason for s in folders.skipped] == ["symlink loop"]
    save(tmp_path / "c" / "fog" / "1" / W[1] / "a.jpg", 1)
    (tmp_path / "c" / "fog" / "hard").mkdir()
    assert [s.reason for s in ImageNetC(tmp_path / "c").skipped] == ["not a severity folder (1-5)"]
    write_video(tmp_path / "p" / "rotate" / W[1] / "v.mp4", [1, 1])
    garbage(tmp_path / "p" / "rotate" / W[1] / "v.txt")
    p = ImageNetP(tmp_path / "p")
    assert len(p.sequences("rotate")) == 1 and [s.reason for s in p.skipped] == ["not a video file (.txt)"]


def test_incomplete_sequences_are_left_out_not_misaligned():
    def row(seq, k, pred):
        return {"image_id": f"{seq}#{k:03d}", "pred": pred, "top5": [pred]}

    rows = [row("a", 0, 1), row("a", 1, 2), row("b", 0, 1), row("b", 2, 1), row("b", 3, 1)]
    preds, top5, incomplete = protocols.sequences_from_rows(rows, [("a", 2), ("b", 4), ("c", 3)])
    assert preds == [[1, 2]] and top5 == [[[1], [2]]] and incomplete == ["b", "c"]


# ----------------------------------------------------------------------------------------------
# item 9: ImageNet-R images of a class outside its 200
# ----------------------------------------------------------------------------------------------

def test_imagenet_r_classes_outside_its_200_are_excluded_with_the_reason(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    save(root / "imagenet-r" / W[R[0]] / "in.jpg", R[0])
    save(root / "imagenet-r" / W[NOT_R] / "out1.jpg", NOT_R)
    save(root / "imagenet-r" / W[NOT_R] / "out2.jpg", NOT_R)
    results = suite(root, out)
    r = results["sets"]["imagenet-r"]
    assert (r["images"], r["top1"]) == (1, 1.0)  # the outside images are not counted as images
    reason = "class not among ImageNet-R's 200 classes"
    assert r["excluded"] == {"total": 2, "by_reason": {reason: 2}, "items": [
        {"path": f"imagenet-r/{W[NOT_R]}/out1.jpg", "reason": reason},
        {"path": f"imagenet-r/{W[NOT_R]}/out2.jpg", "reason": reason}]}
    assert r["skipped"]["total"] == 0
    table = (out / "robustness.md").read_text()
    assert f"| ImageNet-R | excluded | {reason} | 2 | imagenet-r/{W[NOT_R]}/out1.jpg |" in table
