"""report.html: written by every evaluate, self-contained, escaped, and checked in a real headless Chromium."""
import base64
import io
import re
import shutil

import pytest
from PIL import Image

from conftest import browser_page

CONFIGS = ["clean", "gaussian_noise_3", "contrast_2"]
ODD = "<i>odd"  # a config name that is HTML


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Three configs of three sample photos, scored by the embedded EfficientNet-Lite0 on CPU."""
    from shift_hub.evaluation.api import evaluate
    from shift_hub.generate import generate

    root = tmp_path_factory.mktemp("report")
    generate(CONFIGS, "samples", root / "data", limit=3, progress=False)
    result = evaluate("efficientnet_lite0", str(root / "data"), out=root / "results", device="cpu", num_workers=0)
    return result, root / "results"


def _data_uris(text: str) -> list[str]:
    return re.findall(r'src="(data:[^"]*)"', text)


def test_report_written_beside_results_and_self_contained(evaluated):
    result, results_dir = evaluated
    page = results_dir / "report.html"
    assert result.paths["report_html"] == page and (results_dir / "results.json").is_file()
    text = page.read_text()
    assert not re.search(r'(src|href)="(?!data:|#)', text), "every src/href must be inline"
    assert "http://" not in text and "https://" not in text
    for config in CONFIGS:
        assert f'data-config="{config}"' in text and f'<td data-sort="{config}">{config}</td>' in text
    uris = _data_uris(text)
    pngs = [u for u in uris if u.startswith("data:image/png")]
    jpegs = [u for u in uris if u.startswith("data:image/jpeg")]
    assert len(pngs) == 2  # accuracy per shift and vs severity, the PNGs write_outputs made
    assert len(jpegs) == 3 + 2 * 2 * 3  # clean alone; each shifted config beside its clean counterpart
    for uri in jpegs:
        thumb = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert thumb.format == "JPEG" and max(thumb.size) <= 128
    rows = [r for r in result.rows if r["config"] == "gaussian_noise_3"]
    assert any(r["pred_name"] in text for r in rows)


def _synthetic(tmp_path, kind="local", image_id="<img src=x onerror=alert(1)>"):
    """A results document and rows built by the real summarizer, over a tiny hand-written folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shift_hub.evaluation.metrics import summarize
    from shift_hub.evaluation.report import build_results

    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 40, 40)).save(buf, format="JPEG")
    folder = tmp_path / "data"
    (folder / "clean").mkdir(parents=True)
    pq.write_table(pa.table({"image": [{"bytes": buf.getvalue(), "path": None}], "image_id": [image_id],
                             "label": [281]}), folder / "clean" / "validation-00000-of-00001.parquet")
    (folder / ODD).mkdir()
    (folder / ODD / "validation-00000-of-00001.parquet").write_bytes(b"not parquet")
    rows = [{"config": c, "image_id": image_id, "severity": s, "labels": [281], "targets": [281], "pred": p,
             "pred_name": name, "top5": [p], "confidence": 0.9, "correct": p == 281, "correct5": p == 281,
             "scorable": True, "label_space": "imagenet-1k"}
            for c, s, p, name in (("clean", 0, 281, "tabby, tabby cat"), (ODD, 3, 1, "goldfish, Carassius auratus"))]
    configs = ["clean", ODD]
    data = {"source": str(folder), "kind": kind, "split": "validation"}
    results = build_results({"id": "<script>alert('model')</script>"}, data, configs, summarize(rows, configs))
    return results, rows


def test_user_strings_are_escaped_and_a_damaged_shard_is_reported(tmp_path):
    from shift_hub.evaluation.html_report import write_report_html

    results, rows = _synthetic(tmp_path)
    text = write_report_html(results, rows, tmp_path / "report.html").read_text()
    assert "<script>alert" not in text and "&lt;script&gt;alert(&#39;model&#39;)&lt;/script&gt;" in text
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert ODD not in text and "&lt;i&gt;odd" in text
    assert "true: <b>tabby</b>" in text and '<span class="pred">goldfish</span>' in text  # short readable names
    assert "Images could not be read" in text  # the shifted config's shard is garbage: said, not fatal
    assert len([u for u in _data_uris(text) if u.startswith("data:image/jpeg")]) == 2  # clean, and clean beside it


@pytest.mark.parametrize("kind, says", [("on-the-fly", "on the fly"), ("hub", "from the Hub")])
def test_gallery_unavailable_without_stored_images(tmp_path, kind, says):
    from shift_hub.evaluation.html_report import write_report_html

    results, rows = _synthetic(tmp_path, kind=kind, image_id="cat")
    text = write_report_html(results, rows, tmp_path / "report.html").read_text()
    assert "The gallery is unavailable" in text and says in text
    assert 'id="config-table"' in text and "&lt;i&gt;odd" in text
    assert not _data_uris(text)


def test_report_in_headless_chromium(evaluated, tmp_path):
    _, results_dir = evaluated
    page_url = (results_dir / "report.html").resolve().as_uri()
    with browser_page(page_url) as page:
        listed = page.eval_on_selector_all("#config-table tbody tr", "rs => rs.map(r => r.cells[0].textContent)")
        assert sorted(listed) == sorted(CONFIGS)
        shown = page.eval_on_selector_all("#gallery [data-config]", "ds => ds.map(d => d.dataset.config)")
        assert sorted(shown) == sorted(CONFIGS)
        images = page.eval_on_selector_all("img", "is => is.map(i => [i.complete, i.naturalWidth])")
        assert len(images) == 2 + 3 + 12 and all(done and width > 0 for done, width in images), images

        def column(i):
            return page.eval_on_selector_all("#config-table tbody tr",
                                             f"rs => rs.map(r => r.cells[{i}].textContent)")

        header = page.locator("#config-table thead th", has_text="config")
        header.click()
        assert column(0) == sorted(CONFIGS)
        assert header.get_attribute("aria-sort") == "ascending"
        header.click()
        assert column(0) == sorted(CONFIGS, reverse=True)
        top1 = page.locator("#config-table thead th", has_text="top-1 %")
        top1.click()
        top1.click()  # second click: descending
        values = [float(v.split(" ± ")[0]) for v in column(3)]  # "87.50 ± 18.8": sorted by the estimate
        assert values == sorted(values, reverse=True) and column(0)[0] == "clean"
        assert all(" ± " in v for v in column(3))  # every top-1 carries its interval
        page.locator("#config-table thead th", has_text="ECE %").click()
        values = [float(v.split(" ± ")[0]) for v in column(7)]  # ECE carries its interval too
        assert values == sorted(values) and all(" ± " in v for v in column(7))

        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 0


MANY_CONFIGS_BOUND = 1_200_000  # bytes; the 101 configs x 4 sample photos below measured 0.95 MB (4.7 MB before
# thumbnails shrank and the gallery folded): a bound that catches a gallery inlining every image of every config


@pytest.fixture(scope="module")
def many_configs(tmp_path_factory):
    """A 101-config results document (clean, 15 corruptions x 5 severities but gaussian_noise at 2 only, so its
    CE is partial, and 28 other shifts) over 4 real sample photos per config, scored by hand (no model)."""
    import pyarrow.parquet as pq

    from shift_hub.evaluation.metrics import ALEXNET_ERRORS, summarize
    from shift_hub.evaluation.report import build_results
    from shift_hub.generate import generate

    root = tmp_path_factory.mktemp("many")
    folder = root / "data"
    generate(["clean"], "samples", folder, limit=4, progress=False)
    shard = next((folder / "clean").glob("*.parquet"))
    ids = pq.read_table(shard, columns=["image_id"]).column(0).to_pylist()
    configs = ["clean"] + [f"{c}_{s}" for c in ALEXNET_ERRORS for s in range(1, 6)
                           if c != "gaussian_noise" or s <= 2] + [f"other{i:02d}" for i in range(28)]
    for config in configs[1:]:
        (folder / config).mkdir()
        shutil.copy(shard, folder / config / shard.name)
    rows = []
    for n, config in enumerate(configs):
        severity = int(config.rsplit("_", 1)[1]) if config[-1].isdigit() and config[-2] == "_" else 0
        for k, image_id in enumerate(ids):
            pred = 281 if (n + k) % 3 else 1
            rows.append({"config": config, "image_id": image_id, "severity": severity, "labels": [281],
                         "targets": [281], "pred": pred, "pred_name": "x", "top5": [pred], "confidence": 0.9,
                         "correct": pred == 281, "correct5": pred == 281, "scorable": True,
                         "label_space": "imagenet-1k"})
    data = {"source": str(folder), "kind": "local", "split": "validation"}
    results = build_results({"id": "m"}, data, configs, summarize(rows, configs, bootstrap=0))
    return results, rows, configs


def test_many_config_page_is_small_and_has_the_ce_table(many_configs, tmp_path):
    from shift_hub.evaluation.html_report import REST_PER_CONFIG, SHOWN_CONFIGS, write_report_html

    results, rows, configs = many_configs
    page = write_report_html(results, rows, tmp_path / "report.html")
    assert page.stat().st_size < MANY_CONFIGS_BOUND, page.stat().st_size
    text = page.read_text()
    # every config has a gallery entry; all but a few are closed <details> with fewer images
    assert all(f'data-config="{c}"' in text for c in configs)
    assert text.count('<details class="config"') == len(configs) - SHOWN_CONFIGS
    assert len(re.findall(r'src="data:image/jpeg[^"]*" loading="lazy"', text)) == \
        2 * REST_PER_CONFIG * (len(configs) - SHOWN_CONFIGS)
    # the per-corruption CE table, one row per corruption, partial where severities are missing
    per_corruption = results["summary"]["imagenet_c"]["per_corruption"]
    assert 'id="ce-table"' in text
    body = text.split('id="ce-table"', 1)[1].split("</table>", 1)[0]
    assert body.count("<tr>") == 1 + len(per_corruption)
    noise = per_corruption["gaussian_noise"]
    assert f'{100 * noise["ce"]:.2f} (partial)' in body
    assert f'{100 * per_corruption["fog"]["ce"]:.2f}</td>' in body
    assert "mCE " in text.split('id="ce-table"', 1)[1]


def test_many_config_page_in_headless_chromium(many_configs, tmp_path):
    """The folded gallery opens on demand, the CE table sorts on its own columns, and nothing is fetched."""
    from shift_hub.evaluation.html_report import write_report_html

    results, rows, configs = many_configs
    page_url = write_report_html(results, rows, tmp_path / "report.html").resolve().as_uri()
    with browser_page(page_url) as page:
        folded = page.locator("details.config").first
        folded.locator("summary").click()
        assert folded.get_attribute("open") is not None
        folded.locator("img").first.wait_for(state="visible")
        assert folded.locator("img").first.evaluate("i => i.complete && i.naturalWidth > 0")
        ce = page.locator("#ce-table thead th", has_text="mean error %")
        ce.click()
        values = page.eval_on_selector_all("#ce-table tbody tr", "rs => rs.map(r => r.cells[6].dataset.sort)")
        assert [float(v) for v in values] == sorted(float(v) for v in values)


def test_plots_are_drawn_for_the_page_column(evaluated):
    """Both plots are 1200 px wide, the width report.html shows them at (1:1, so 10 pt text stays ~17 px)."""
    _, results_dir = evaluated
    for name in ("accuracy_per_shift.png", "accuracy_vs_severity.png"):
        with Image.open(results_dir / name) as image:
            assert image.size[0] == 1200, (name, image.size)
    text = (results_dir / "report.html").read_text()
    assert ".plots img { display: block; max-width: 100%;" in text  # never stretched past its own width


def _imagenet_p_only(tmp_path):
    """A results document of two ImageNet-P sequence configs only (results["metrics"] empty), its summary made by
    the real summarizer from hand-written frame rows: four sequences of four frames, the top-1 flipping often."""
    from shift_hub.evaluation.metrics import summarize
    from shift_hub.evaluation.report import build_results
    from shift_hub.evaluation.sequence_scores import summarize_sequences

    configs = ("imagenet_p_brightness", "imagenet_p_gaussian_noise")
    rows = [{"config": c, "image_id": f"s{s}#{k}", "pred": 1 + (k + s + n) % 2 * (k > 1), "top5": [1, 2, 3, 4, 5]}
            for n, c in enumerate(configs) for s in range(4) for k in range(4)]
    expected = {c: [(f"s{s}", 4) for s in range(4)] for c in configs}
    scored = summarize([], [], bootstrap=0)
    scored["summary"]["imagenet_p"] = summarize_sequences(rows, expected, resamples=100)
    data = {"source": str(tmp_path / "data"), "kind": "local", "split": "validation", "sequence_configs": list(configs)}
    return build_results({"id": "p-model"}, data, [], scored), rows


def test_imagenet_p_section_in_headless_chromium(tmp_path):
    """A run of ImageNet-P configs only renders: its section lists each config with its flip probability and top-5
    distance ± their intervals, sorts, shows the plot and the means; no empty per-config table or gallery."""
    from shift_hub.evaluation.report import write_outputs

    results, rows = _imagenet_p_only(tmp_path)
    p = results["summary"]["imagenet_p"]
    paths = write_outputs(results, rows, tmp_path / "out")
    with browser_page(paths["report_html"].resolve().as_uri()) as page:
        def column(i):
            return page.eval_on_selector_all("#imagenet-p-table tbody tr",
                                             f"rs => rs.map(r => r.cells[{i}].textContent)")

        assert sorted(column(0)) == sorted(p["per_config"])
        for name, text in zip(column(0), column(5)):
            e = p["per_config"][name]
            ci = e["ci"]["flip_probability"]
            assert text == f"{100 * e['flip_probability']:.2f} ± {100 * (ci['ci_high'] - ci['ci_low']) / 2:.1f}"
        assert all(re.fullmatch(r"\d+\.\d{3} ± \d+\.\d{3}", t) for t in column(6)), column(6)
        page.locator("#imagenet-p-table thead th", has_text="flip probability %").click()
        values = [float(t.split(" ± ")[0]) for t in column(5)]
        assert values == sorted(values)
        summary = page.locator("#imagenet-p-summary").inner_text()
        assert f"mean flip probability {100 * p['mean_flip_probability']:.2f} ± " in summary
        assert "over the 2 of 10 benchmark perturbations present" in summary and "no AlexNet reference" in summary
        plot = page.locator("#imagenet-p img")
        assert plot.evaluate("i => i.complete && i.naturalWidth") == 1200
        assert page.locator("#config-table").count() == 0 and page.locator("#gallery").count() == 0
