"""Engines (issue 14): Ray tasks and job-array slices write exactly the bytes of one local run.

Ray runs a real local cluster here (`ray.init(num_cpus=2)`); the tests skip only when Ray is not installed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import digests
from shift_hub import cli, engines, folder
from shift_hub import generate as engine
from shift_hub.registry import expand, get
from shift_hub.sources import Example


def card_body(out: Path) -> str:
    return (out / "README.md").read_text()


# --- assignment -------------------------------------------------------------------------------------

def _plan(n_images: int, shard_size: int, configs=("imagenet_c", "imagenet_c_extra")) -> list:
    examples = [Example(f"img{i:05d}", (i % 1000,), i) for i in range(n_images)]
    jobs = []
    for name in expand(list(configs)):
        jobs += engine.plan_jobs(get(name), examples, Path("/nowhere"), 0, get(name).encoding, shard_size, "t")
    return jobs


@pytest.mark.parametrize("n_images,shard_size", [(100, 1000), (2000, 1000), (5000, 500)])
@pytest.mark.parametrize("processes", [2, 4, 8])
def test_cost_balanced_assignment_of_the_19x5_imagenet_c_configs(n_images, shard_size, processes):
    jobs = _plan(n_images, shard_size)
    assert len({j.config for j in jobs}) == 95
    parts = engines.assign(jobs, processes)
    assert sorted(j.path for p in parts for j in p) == sorted(j.path for j in jobs)  # each exactly once
    loads = [sum(engines.job_cost(j) for j in p) for p in parts]
    assert max(loads) <= 1.10 * (sum(loads) / processes)
    assert engines.assign(list(reversed(jobs)), processes) == parts  # the plan decides, not the input order


def test_longest_first_puts_the_expensive_configs_first():
    order = [j.config for j in engines.longest_first(_plan(10, 10, ("clean", "toon_ius", "gaussian_noise_1")))]
    assert order == ["toon_ius", "gaussian_noise_1", "clean"]


@pytest.mark.parametrize("text,message", [("0/3", "between 1 and 3"), ("4/3", "between 1 and 3"),
                                          ("1/0", "at least 1"), ("a/b", "whole numbers"), ("3", "I/N")])
def test_bad_shard_specs_are_one_clear_line(tmp_path, capsys, text, message):
    assert cli.main(["generate", "clean", "--out", str(tmp_path / "o"), "--shard", text, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "--shard" in err
    assert not (tmp_path / "o").exists()


# --- job-array slices ---------------------------------------------------------------------------------

def test_job_array_slices_in_any_order_one_killed_give_the_files_of_one_run(tmp_path):
    configs = ["clean", "gaussian_noise_1", "zoom_blur_2", "drawing"]
    common = dict(limit=4, shard_size=1, progress=False)
    ref, out = tmp_path / "ref" / "data", tmp_path / "run" / "data"
    engine.generate(configs, "samples", ref, **common)
    # slice 2 is killed mid-run (SIGKILL, as a scheduler's preemption would), then rerun
    cmd = [sys.executable, "-m", "shift_hub.cli", "generate", *configs, "--out", str(out), "--limit", "4",
           "--shard-size", "1", "--quiet", "--shard", "2/3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list(out.glob("*/*.parquet")):
        time.sleep(0.02)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    engine.generate(configs, "samples", out, shard="3/3", **common)
    assert not (out / "README.md").exists()  # slice 1 is still to come
    engine.generate(configs, "samples", out, shard="2/3", **common)
    engine.generate(configs, "samples", out, shard="1/3", **common)
    assert digests(out) == digests(ref) and len(digests(out)) == 16
    assert card_body(out) == card_body(ref)
    assert not list(out.glob("*/.*tmp*"))


def test_slices_split_the_plan_without_overlap(tmp_path):
    configs = ["clean", "gaussian_noise_1"]
    done = []
    for i in (1, 2):
        reports = engine.generate(configs, "samples", tmp_path / f"s{i}", limit=4, shard_size=1, progress=False,
                                  shard=f"{i}/2")
        done.append(sum(r.written for r in reports.values()))
    assert sum(done) == 8 and all(done)
    one = set(digests(tmp_path / "s1")) & set(digests(tmp_path / "s2"))
    assert not one


def test_card_command_refuses_an_incomplete_folder_then_writes(tmp_path, capsys):
    out = tmp_path / "out"
    engine.generate(["clean"], "samples", out, limit=4, shard_size=1, progress=False, shard="1/2")
    assert cli.main(["card", str(out)]) == 2
    assert "missing" in capsys.readouterr().err
    engine.generate(["clean"], "samples", out, limit=4, shard_size=1, progress=False, shard="2/2")
    (out / "README.md").unlink()
    assert cli.main(["card", str(out)]) == 0 and folder.is_shift_hub_card(out / "README.md")


# --- Ray ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'shift-hub[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def random_whitebox(tmp_path_factory) -> str:
    from safetensors.numpy import save_file

    from shift_hub.shifts.cartoon import WhiteBoxGenerator

    path = tmp_path_factory.mktemp("weights") / "random.safetensors"
    save_file({k: v.numpy() for k, v in WhiteBoxGenerator().state_dict().items()}, str(path))
    return str(path)


def test_ray_engine_is_byte_identical_to_one_process(ray_cluster, tmp_path, random_whitebox):
    configs = ["clean", "gaussian_noise_3", "glass_blur_1", "toon_handdrawn", "cartoon"]
    common = dict(limit=3, shard_size=2, progress=False, overrides={"weights": random_whitebox}, batch_size=2)
    ref, out = tmp_path / "ref" / "data", tmp_path / "ray" / "data"
    engine.generate(configs, "samples", ref, num_proc=1, **common)
    engine.generate(configs, "samples", out, engine="ray", **common)
    assert digests(out) == digests(ref) and len(digests(ref)) == 10
    assert card_body(out) == card_body(ref)


def _ray_task_workers() -> list:
    import psutil

    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        text = " ".join(p.info["cmdline"] or []) + " " + (p.info["name"] or "")
        if "_ray_shard" in text and "IDLE" not in text:
            found.append(p)
    return found


def test_a_killed_ray_worker_is_retried_without_duplicates_or_temp_files(ray_cluster, tmp_path):
    out = tmp_path / "out"
    done = {}
    run = threading.Thread(target=lambda: done.update(engine.generate(
        ["toon_ius"], "samples", out, engine="ray", limit=4, shard_size=4, progress=False)))
    run.start()
    killed = 0
    deadline = time.time() + 180
    while time.time() < deadline and run.is_alive() and not killed:
        if list(out.glob("toon_ius/.*tmp*")):  # mid-shard: its temp file is open
            for p in _ray_task_workers():
                p.send_signal(signal.SIGKILL)
                killed += 1
        time.sleep(0.05)
    run.join(timeout=300)
    assert killed, "no Ray worker was caught mid-shard"
    assert not run.is_alive() and done["toon_ius"].written == 4
    engine.generate(["toon_ius"], "samples", tmp_path / "ref", limit=4, shard_size=4, progress=False)
    assert digests(out) == digests(tmp_path / "ref")
    assert not list(out.glob("*/.*tmp*"))
    import pyarrow.parquet as pq

    ids = pq.read_table(out / "toon_ius" / "validation-00000-of-00001.parquet").column("image_id").to_pylist()
    assert len(ids) == len(set(ids)) == 4


def test_ray_missing_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert cli.main(["generate", "clean", "--out", str(tmp_path / "o"), "--limit", "1", "--engine", "ray",
                     "--quiet"]) == 2
    assert "pip install 'shift-hub[ray]'" in capsys.readouterr().err


def test_a_ray_worker_that_cannot_write_out_is_one_clear_line(ray_cluster, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "clean").mkdir(mode=0o500)  # the config folder exists but cannot be written (as on a node without the mount)
    if os.access(out / "clean", os.W_OK):  # root writes anywhere: make the folder a file instead
        (out / "clean").rmdir()
        (out / "clean").write_text("not a folder")
    with pytest.raises(engine.GenerationError, match="every worker must see --out"):
        engine.generate(["clean"], "samples", out, engine="ray", limit=1, progress=False)
