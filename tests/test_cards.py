"""The dataset card: compact (papers and deviations once), `clean` the default, licence per source, facts that
survive a merge (through shift_hub.json, card_facts; an older card read once, legacy_card). Many-config cards are
built from one generated config's facts, so no shift runs here."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from shift_hub import folder
from shift_hub.generate import generate
from shift_hub.hub import card_facts, cards, legacy_card
from shift_hub.hub.card_facts import CardFacts
from shift_hub.registry import REGISTRY, expand
from shift_hub.sources import Devkit, Folders, HFDataset, Samples
from shift_hub.sources.samples import MANIFEST

# issue #16: the card of `shift-hub evaluate ... --data samples` under 40 KB for its then 101 configs: now a budget
# per config, so that the field's new shifts (C-bar, 3DCC) may join the main job without the card growing per config
README_BYTES_PER_CONFIG = 400


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cards") / "shift_hub"
    generate(["clean", "gaussian_noise_1"], "samples", out, limit=2, progress=False)
    return out


def facts_like(out: Path, name: str, source: str | None = None, **extra) -> dict:
    """`name`'s facts as if generated like `clean` in `out` (data-derived values copied from it)."""
    stats = folder.summary(out)["clean"]
    data = card_facts.config_facts(out, "clean", stats)
    stats = {**stats, "params": dict(REGISTRY[name].params), "source": source or stats["source"]}
    facts = card_facts.config_facts(out, name, stats)
    keep = ("ids_sha256", "classes", "top", "thumbnail") + (("photos",) if "photos" in facts else ())
    return {**facts, **{k: data[k] for k in keep}, "thumbnail": 2, **extra}


def readme_job_facts(out: Path) -> CardFacts:
    """The card facts of the README main job: `clean` + every CPU config from all 8 sample photos."""
    every_photo = sorted(s.image_id for s in MANIFEST)
    top = [[i, 1] for i in range(5)]
    return card_facts.from_configs([(facts_like(out, n, photos=every_photo, top=top), cards.config_entry(n))
                                    for n in expand(["clean", "all-cpu"])])


def readme_job_card(out: Path):
    """The card of the README main job, and its configs."""
    facts = readme_job_facts(out)
    return cards.render(facts, "data"), facts.names


def test_many_config_card_is_compact(out):
    card, names = readme_job_card(out)
    text = str(card)
    assert len(names) > 100
    assert len(text.encode()) < README_BYTES_PER_CONFIG * len(names)
    cards.validate_card(text)
    # a config costs little beyond its `configs:` entry: five more severities add under 1.5 KB
    fewer = [n for n in names if not n.startswith("gaussian_noise_")]
    small = cards.compose_card([(facts_like(out, n), cards.config_entry(n)) for n in fewer], "data")
    large = cards.compose_card([(facts_like(out, n), cards.config_entry(n)) for n in names], "data")
    assert len(str(large).encode()) - len(str(small).encode()) < 1500


def test_each_paper_and_deviation_once_and_every_config_points_to_them(out):
    text = str(readme_job_card(out)[0])
    used = {k for n in expand(["clean", "all-cpu"]) for k in card_facts.bibtex_entries(REGISTRY[n].citation)}
    for key in used:
        assert len(re.findall(rf"@\w+\{{{key},", text)) == 1, key
    assert text.count("Hendrycks, Dan") == 1
    deviations = {REGISTRY[n].deviation for n in expand(["all-cpu"]) if REGISTRY[n].deviation}
    listed = text.split("## Known deviations")[1].split("\n## ")[0]
    assert len(re.findall(r"^\d+\. ", listed, re.M)) == len(deviations)
    for dev in deviations:
        assert text.count(f": {' '.join(dev.split())}\n") == 1
    facts = CardFacts.from_json(readme_job_facts(out).to_json()).facts  # what shift_hub.json gives back
    assert set(facts) == set(expand(["clean", "all-cpu"]))
    assert facts["gaussian_noise_3"]["cite"] == ["hendrycks2019benchmarking"]
    assert facts["gaussian_noise_3"]["severity"] == 3 and facts["gaussian_noise_3"]["params"] == "severity=3"
    assert facts["toon_ius"]["cite"] == ["zhou2018toonnet"]
    assert "[hendrycks2019benchmarking](#citation)" in text and "[zhou2018toonnet](#citation)" in text


def test_card_facts_merge_and_read_back_to_themselves(out):
    facts = readme_job_facts(out)
    text = str(cards.render(facts, "data"))
    stored = CardFacts.from_json(facts.to_json())
    assert str(cards.render(stored, "data")) == text and stored.to_json() == facts.to_json()
    assert str(cards.render(card_facts.merge(stored, stored), "data")) == text


def test_clean_is_the_default_config_and_loads_without_a_name(out):
    text = (out / "README.md").read_text()
    card = cards.validate_card(text)
    assert [(c["config_name"], c.get("default")) for c in card.data.configs] == \
        [("clean", True), ("gaussian_noise_1", None)]
    assert folder.is_shift_hub_card(out / "README.md")
    import datasets

    ds = datasets.load_dataset(str(out), split="validation")
    assert set(ds["config"]) == {"clean"} and len(ds) == 2


def test_one_default_when_a_remote_card_chose_another(out):
    local = cards.local_facts(out, ["clean"])
    remote = cards.local_facts(out, ["gaussian_noise_1"])
    remote.entries[0]["default"] = True
    merged = cards.validate_card(str(cards.render(card_facts.merge(local, remote), "org/x")))
    assert [c["config_name"] for c in merged.data.configs if c.get("default")] == ["gaussian_noise_1"]


def test_dataset_card_load_parses_it(out):
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(out / "README.md")
    assert card.data.pretty_name and "shift_hub" in card.data.tags
    assert [c["config_name"] for c in card.data.configs] == ["clean", "gaussian_noise_1"]
    assert card.data.license == "cc0-1.0"  # limit=2: camera and chelsea, both CC0
    assert "## Citation" in card.text and "## License" in card.text


def test_source_kinds_follow_the_sources_descriptions(tmp_path):
    assert cards.source_kind(Samples().describe()) == "samples"
    assert cards.source_kind(Devkit(tmp_path).describe()) == "imagenet"
    assert cards.source_kind(Folders(tmp_path).describe()) == "folders"
    assert cards.source_kind(HFDataset("org/set").describe()) == "hf"


def test_licence_follows_the_source(out, tmp_path):
    samples = cards.compose_card([(facts_like(out, "clean"), cards.config_entry("clean"))], "x")
    assert samples.data.license == "cc0-1.0" and "license_name" not in samples.data.to_dict()
    licence = samples.text.split("## License")[1].split("\n## ")[0]
    assert "CC0 (Lav Varshney)" in licence and "ImageNet terms" not in licence and "china" not in licence

    every = cards.compose_card([(facts_like(out, "clean", photos=[s.image_id for s in MANIFEST]),
                                 cards.config_entry("clean"))], "x")
    assert every.data.license == ["cc-by-2.0", "cc0-1.0", "other", "unknown"]
    assert every.data.license_name == "public-domain"
    assert "CC BY 2.0 (danielbuechele on Flickr)" in every.text and "no licence stated" in every.text

    devkit = Devkit(tmp_path).describe()
    imagenet = cards.compose_card([(facts_like(out, "clean", devkit), cards.config_entry("clean"))], "x")
    assert imagenet.data.license == "other" and imagenet.data.license_name == "imagenet-terms-of-access"
    assert imagenet.data.license_link == cards.IMAGENET_TERMS
    assert "ImageNet terms of access" in imagenet.text and "non-commercial" in imagenet.text

    cartoon = cards.compose_card([(facts_like(out, "clean", devkit), cards.config_entry("clean")),
                                  (facts_like(out, "cartoon", devkit), cards.config_entry("cartoon"))], "x")
    assert cartoon.data.license == ["cc-by-nc-sa-4.0", "other"]
    licence = cartoon.text.split("## License")[1].split("\n## ")[0]
    assert "`cartoon`: made with model weights released under `cc-by-nc-sa-4.0`" in licence
    assert "non-commercial use only, and share-alike" in licence and "`clean`:" not in licence
    cards.validate_card(str(cartoon))


LEGACY = """---
tags:
- shift_hub
configs:
- config_name: old_shift
  data_files:
  - split: validation
    path: old_shift/validation-*.parquet
---
# An earlier shift_hub card

<!-- shift_hub:config {"deviation": "Old deviation text.", "family": "old", "ids_sha256": "ab", "name": "old_shift", \
"noncommercial": false, "seed": 1, "skipped": 0, "source": "devkit ILSVRC-2012 val (val)", "version": "0.0.9", \
"written": 5} -->
### `old_shift`

![old_shift: first 5 images](thumbnails/old_shift.jpg)

| | |
|---|---|
| parameters | a=1, b=\\[x\\] |
| geometry | full resolution |

<details><summary>Citation</summary>

```bibtex
@misc{old2020paper,
  title={An Old Paper},
  year={2020}
}
```
</details>
<!-- /shift_hub:config -->
"""


def test_merge_keeps_the_papers_and_deviations_of_remote_configs(out):
    facts = card_facts.merge(cards.local_facts(out, ["clean"]), legacy_card.read(LEGACY))  # read once
    merged = str(cards.render(facts, "org/x"))
    cards.validate_card(merged)
    assert facts.names == ["old_shift", "clean"]
    for key in ("old2020paper", "russakovsky2015imagenet"):
        assert len(re.findall(rf"@\w+\{{{key},", merged)) == 1, key
    assert merged.count("Old deviation text.") == 1
    assert "ImageNet terms of access" in merged and "CC0 (Lav Varshney)" in merged  # devkit and samples terms
    old = facts.facts["old_shift"]
    assert (old["seed"], old["written"], old["version"], old["thumbnail"]) == (1, 5, "0.0.9", 5)
    assert (old["params"], old["geometry"]) == ("a=1, b=[x]", "full resolution")  # read from its table

    stored = CardFacts.from_json(facts.to_json())  # from now on the facts file, not the card
    again_facts = card_facts.merge(cards.local_facts(out, ["gaussian_noise_1"]), stored)
    again = str(cards.render(again_facts, "org/x"))  # the carried-over paper and text survive a later push
    assert again_facts.names == ["old_shift", "clean", "gaussian_noise_1"]
    assert len(re.findall(r"@\w+\{old2020paper,", again)) == 1 and again.count("Old deviation text.") == 1
    assert again_facts.facts["old_shift"]["deviation"] == "Old deviation text."


def test_user_strings_stay_inert(out):
    evil = "evil <img src=x> `code` [link](http://x) --> | ## heading"
    facts = facts_like(out, "clean", evil, skipped=1, skip_reasons=[[evil, 1]], skipped_examples=[[evil, evil]])
    other = facts_like(out, "clean_full", evil)
    stored = card_facts.from_configs([(facts, cards.config_entry("clean")), (other, cards.config_entry("clean_full"))])
    text = str(cards.render(stored, "x"))
    cards.validate_card(text)
    assert "<img" not in text and "[link](" not in text and "`code`" not in text
    assert "\n## heading" not in text and "\n#### heading" not in text
    back = CardFacts.from_json(stored.to_json()).facts  # kept as they are in shift_hub.json
    assert back["clean"]["source"] == evil and back["clean"]["skipped_examples"] == [[evil, evil]]
