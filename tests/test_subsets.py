"""--subset robustbench|FILE (issue 24 item 3): exactly the listed images, or a one-line refusal."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import shift_hub
from conftest import REPO, devkit_meta, jpeg_bytes, linear_stub, photo
from shift_hub import classes, subsets
from shift_hub.cli import main
from shift_hub.planning import plan_examples
from shift_hub.sources import Devkit, Folders
from shift_hub.subsets import SubsetError

EXTRA = [f"ILSVRC2012_val_{n:08d}" for n in (1, 2, 3)]  # val images RobustBench does not list


@pytest.fixture(scope="module")
def robustbench():
    return subsets.load("robustbench")


def make_devkit(root, stems, wnid_of, labelled=None):
    """A devkit whose val/ holds `stems` (hard links to one tiny JPEG) and whose ground truth labels image N with
    `wnid_of(stem)`; the CLS-LOC ids map to WNIDs in index order (1 -> n01440764)."""
    devkit_meta(root)
    truth = [1] * 50000
    for stem in stems:
        truth[int(stem[-8:]) - 1] = classes.index_of(wnid_of(stem)) + 1
    (root / "data" / "ILSVRC2015_clsloc_validation_ground_truth.txt").write_text("\n".join(map(str, truth)) + "\n")
    tiny = root / "tiny.jpg"
    tiny.write_bytes(jpeg_bytes(photo(0, size=(24, 32))))
    for stem in stems:
        os.link(tiny, root / "val" / f"{stem}.JPEG")
    return root


@pytest.fixture(scope="module")
def rb_devkit(tmp_path_factory, robustbench):
    """ILSVRC-2012 val in miniature: RobustBench's 5,000 images, labelled as its list says, plus 3 it leaves out."""
    wnid = dict(zip(robustbench.ids, robustbench.wnids))
    return make_devkit(tmp_path_factory.mktemp("devkit"), [*robustbench.ids, *EXTRA], lambda s: wnid.get(s, "n01440764"))


def written_ids(out, config="clean"):
    import pyarrow.parquet as pq

    return [i for p in sorted((out / config).glob("*.parquet"))
            for i in pq.read_table(p, columns=["image_id"]).column("image_id").to_pylist()]


def test_the_shipped_list_is_robustbench_s_with_its_licence(robustbench):
    assert len(robustbench.ids) == len(set(robustbench.ids)) == 5000
    assert robustbench.ids[0] == "ILSVRC2012_val_00015253" and robustbench.wnids[0] == "n09468604"
    assert robustbench.sha256 == "d4121626d07722a0126c35b1563042e46a546f1a05ce705f2cdc635896d58574"
    licence = (REPO / "shift_hub" / "data" / "robustbench" / "LICENSE").read_text()
    assert "MIT" in licence and "Francesco Croce, Maksym Andriushchenko, Vikash Sehwag" in licence


def test_robustbench_subset_of_a_devkit_keeps_exactly_the_listed_images(rb_devkit, robustbench):
    source = Devkit(rb_devkit)
    assert len(plan_examples(source)) == 5003
    kept = plan_examples(source, subset="robustbench")
    assert sorted(e.image_id for e in kept) == sorted(robustbench.ids)
    wnid = dict(zip(robustbench.ids, robustbench.wnids))
    assert all(classes.wnids()[e.label] == wnid[e.image_id] for e in kept)
    assert [e.image_id for e in plan_examples(source, limit=2, subset="robustbench")] == sorted(robustbench.ids)[:2]


def test_generate_cli_subset_robustbench_writes_only_listed_images_and_records_the_list(rb_devkit, robustbench,
                                                                                        tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", "clean", "--source", f"devkit:{rb_devkit}", "--subset", "robustbench", "--limit", "3",
                 "--out", str(out), "--quiet"]) == 0
    assert written_ids(out) == sorted(robustbench.ids)[:3]
    from shift_hub import folder

    source = folder.summary(out)["clean"]["source"]
    assert "subset robustbench (5000 images, id list sha256 d4121626d07722a0)" in source
    assert "subset robustbench" in (out / "README.md").read_text()


def test_file_subset_takes_either_form_comments_and_blank_lines(rb_devkit, robustbench, tmp_path):
    chosen = sorted(robustbench.ids)[:3]
    wnid = dict(zip(robustbench.ids, robustbench.wnids))
    ids = tmp_path / "my ids.txt"
    ids.write_text(f"# three of RobustBench's\n\n{wnid[chosen[0]]}/{chosen[0]}.JPEG\n{chosen[1]}  # bare id\n"
                   f"{chosen[2]}.JPEG\n{EXTRA[0]}\n")
    out = tmp_path / "out"
    assert main(["generate", "clean", "--source", f"devkit:{rb_devkit}", "--subset", str(ids), "--out", str(out),
                 "--quiet"]) == 0
    assert written_ids(out) == sorted([*chosen, EXTRA[0]])
    from shift_hub import folder

    source = folder.summary(out)["clean"]["source"]
    assert "subset my ids.txt (4 images" in source and str(tmp_path) not in source  # the name, never the folder


def test_class_folders_match_by_file_stem_and_their_wnid(tmp_path):
    for wnid, stem in (("n01440764", "ILSVRC2012_val_00000007"), ("n02123045", "ILSVRC2012_val_00000009")):
        (tmp_path / wnid).mkdir()
        (tmp_path / wnid / f"{stem}.JPEG").write_bytes(jpeg_bytes(photo(1)))
    subset = subsets.parse(b"n02123045/ILSVRC2012_val_00000009.JPEG\n", "one.txt")
    assert [e.image_id for e in plan_examples(Folders(tmp_path), subset=subset)] == ["n02123045/ILSVRC2012_val_00000009"]
    wrong = subsets.parse(b"n01440764/ILSVRC2012_val_00000009.JPEG\n", "wrong.txt")
    with pytest.raises(SubsetError, match="ILSVRC2012_val_00000009 is n01440764 in subset wrong.txt but labelled n02123045"):
        plan_examples(Folders(tmp_path), subset=wrong)


def test_missing_listed_images_are_refused_in_one_line_naming_them(rb_devkit, tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{EXTRA[0]}\nILSVRC2012_val_00000004\nILSVRC2012_val_00000005\n")
    out = tmp_path / "out"
    assert main(["generate", "clean", "--source", f"devkit:{rb_devkit}", "--subset", str(ids), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "2 of the 3 images of subset ids.txt are missing (ILSVRC2012_val_00000004, ILSVRC2012_val_00000005)" in err
    assert not list(out.glob("*/*.parquet"))


def test_robustbench_on_a_source_without_its_images_is_refused(tmp_path, robustbench):
    wnid = dict(zip(robustbench.ids, robustbench.wnids))
    root = make_devkit(tmp_path / "dk", sorted(robustbench.ids)[:4], wnid.get)  # 4 of the 5,000
    with pytest.raises(SubsetError, match=r"4996 of the 5000 images of subset robustbench are missing \(.*, \.\.\.\)"):
        plan_examples(Devkit(root), subset="robustbench")


def test_a_label_mismatch_is_refused_naming_the_image(tmp_path, capsys):
    root = make_devkit(tmp_path / "dk", ["ILSVRC2012_val_00000011"], lambda s: "n01443537")  # goldfish
    ids = tmp_path / "ids.txt"
    ids.write_text("n01440764/ILSVRC2012_val_00000011.JPEG\n")  # tench in the list
    assert main(["generate", "clean", "--source", f"devkit:{root}", "--subset", str(ids),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "ILSVRC2012_val_00000011 is n01440764 in subset ids.txt but labelled n01443537 here" in err


@pytest.mark.parametrize("text,message", [
    (b"ILSVRC2012_val_00000001\nn01440764/ILSVRC2012_val_00000001.JPEG\n", "line 2: ILSVRC2012_val_00000001 is listed twice"),
    (b"n99999999/ILSVRC2012_val_00000001.JPEG\n", "line 1: n99999999 is not one of the 1000"),
    (b"# nothing\n\n", "lists no image ids"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_bad_lists_are_refused_naming_the_line(text, message):
    with pytest.raises(SubsetError, match=message):
        subsets.parse(text, "ids.txt")


def test_an_unreadable_list_is_refused_before_the_source_is_read(tmp_path, capsys):
    assert main(["generate", "clean", "--source", str(tmp_path / "nowhere"), "--subset", str(tmp_path / "no.txt"),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"--subset {tmp_path / 'no.txt'}: cannot read the id list" in err and "nowhere" not in err


# --- evaluate --subset ---------------------------------------------------------------------------------

def _stub():
    """A fixed net over 8x8 inputs: the test is about which rows are scored, not about the scores."""
    return linear_stub()


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """clean and gaussian_noise_1 over 4 val images (no subset), for evaluate --subset."""
    from shift_hub.generate import generate

    root = tmp_path_factory.mktemp("small")
    stems = [f"ILSVRC2012_val_{n:08d}" for n in (21, 22, 23, 24)]
    make_devkit(root / "dk", stems, lambda s: "n01443537")
    generate(["clean", "gaussian_noise_1"], f"devkit:{root / 'dk'}", root / "data", progress=False)
    return root / "data"


def test_evaluate_subset_scores_only_the_listed_rows_and_says_so(small_folder, tmp_path):
    ids = tmp_path / "two.txt"
    ids.write_text("ILSVRC2012_val_00000022\nn01443537/ILSVRC2012_val_00000024.JPEG\n")
    result = shift_hub.evaluate(_stub(), small_folder, out=tmp_path / "res", num_workers=0, bootstrap=0,
                                plots=False, subset=str(ids))
    assert sorted({r["image_id"] for r in result.rows}) == ["ILSVRC2012_val_00000022", "ILSVRC2012_val_00000024"]
    assert {c: m["n"] for c, m in result.metrics.items()} == {"clean": 2, "gaussian_noise_1": 2}
    saved = json.loads((tmp_path / "res" / "results.json").read_text())
    assert saved["data"]["subset"] == {"name": "two.txt", "images": 2, "sha256": subsets.load(ids).sha256}
    note = saved["summary"]["imagenet_c"]["note"]
    assert "normalised by AlexNet's errors on all 50,000 ImageNet-C validation images" in note
    table = (tmp_path / "res" / "table.md").read_text()
    assert "subset two.txt (2 images)" in table and "not by AlexNet's errors on these 2 images" in table


def test_evaluate_subset_limit_counts_within_the_subset(small_folder, tmp_path):
    ids = tmp_path / "two.txt"
    ids.write_text("ILSVRC2012_val_00000023\nILSVRC2012_val_00000024\n")
    result = shift_hub.evaluate(_stub(), small_folder, ["clean"], num_workers=0, bootstrap=0, limit=1, subset=str(ids))
    assert [r["image_id"] for r in result.rows] == ["ILSVRC2012_val_00000023"]


def test_evaluate_subset_refuses_a_folder_without_every_listed_image(small_folder, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("ILSVRC2012_val_00000022\nILSVRC2012_val_00000099\n")
    with pytest.raises(SubsetError, match="config clean: 1 of the 2 images of subset ids.txt are missing "
                                          r"\(ILSVRC2012_val_00000099\).*generate the folder with --subset ids.txt"):
        shift_hub.evaluate(_stub(), small_folder, num_workers=0, bootstrap=0, subset=str(ids))


def test_evaluate_cli_subset_error_is_one_line(small_folder, tmp_path, capsys):
    assert main(["evaluate", "efficientnet_lite0", "--data", str(small_folder), "--subset", "robustbench",
                 "--out", str(tmp_path), "--num-workers", "0", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "5000 of the 5000 images of subset robustbench are missing" in err


def test_evaluate_on_the_fly_subset_shifts_only_the_listed_images(tmp_path):
    root = make_devkit(tmp_path / "dk", [f"ILSVRC2012_val_{n:08d}" for n in (31, 32, 33)], lambda s: "n01443537")
    ids = tmp_path / "ids.txt"
    ids.write_text("ILSVRC2012_val_00000032\n")
    result = shift_hub.evaluate(_stub(), f"devkit:{root}", ["clean"], on_the_fly=True, num_workers=0, bootstrap=0,
                                subset=str(ids))
    assert [r["image_id"] for r in result.rows] == ["ILSVRC2012_val_00000032"]
    assert result.results["data"]["subset"]["images"] == 1
