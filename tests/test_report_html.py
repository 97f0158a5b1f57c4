"""report.html: written by every evaluate, self-contained, escaped, and checked in a real headless Chromium."""
import base64
import io
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

CONFIGS = ["clean", "gaussian_noise_3", "contrast_2"]
CHROMIUM = "/usr/bin/chromium"
ODD = "<i>odd"  # a config name that is HTML
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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


def _chromium():
    """Playwright's sync API and Debian's Chromium, or a skip that says which one is missing."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install playwright): browser test skipped")
    if not Path(CHROMIUM).is_file() and not shutil.which("chromium"):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium): browser test skipped")
    return sync_api, CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")


def test_report_in_headless_chromium(evaluated, tmp_path):
    sync_api, executable = _chromium()
    _, results_dir = evaluated
    page_url = (results_dir / "report.html").resolve().as_uri()
    requests, problems = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(page_url, wait_until="load")

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
            values = [float(v) for v in column(3)]
            assert values == sorted(values, reverse=True) and column(0)[0] == "clean"
            page.locator("#config-table thead th", has_text="ECE %").click()
            values = [float(v) for v in column(7)]
            assert values == sorted(values)

            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "report.png").stat().st_size > 0
    assert not problems, problems
    assert requests and all(u.startswith(("file:", "data:")) for u in requests), requests
