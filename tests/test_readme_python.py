"""The README's Python block runs as written, against the local Hub and the embedded model: the models it names
that cannot be had offline are replaced by a tiny timm folder; every other line is the README's own."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO
from hub_server import HubServer

TOKEN = "hf_readmeTOKENforTests0123456789"


def _block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    (block,) = [b for b in blocks if "shift_hub.evaluate(" in b and "push_results" in b]
    return block


def test_the_readme_python_block_runs_as_written(tmp_path):
    import timm
    from timm.models import save_for_hf

    from shift_hub.generate import generate

    save_for_hf(timm.create_model("test_resnet"), tmp_path / "tiny-timm", safe_serialization=True)
    generate(["clean", "gaussian_noise_1"], "samples", tmp_path / "out", limit=2, progress=False)
    block = _block()
    assert '"torchvision:resnet50"' in block  # the one model that needs a download
    code = block.replace('"torchvision:resnet50"', repr(f"local-dir:{tmp_path / 'tiny-timm'}"))
    server = HubServer().start()
    try:
        server.state.create_repo("model", "my-org/my-model", private=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))
               and "proxy" not in k.lower()}
        env.update(HF_ENDPOINT=server.url, HF_TOKEN=TOKEN, HF_HOME=str(tmp_path / "hf_home"),
                   HF_DATASETS_CACHE=str(tmp_path / "cache"), HF_HUB_DISABLE_TELEMETRY="1")
        run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    assert "efficientnet_lite0" in run.stdout and (tmp_path / "results" / "results.json").is_file()
    assert (tmp_path / "board" / "leaderboard.md").is_file()
