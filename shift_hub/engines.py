"""Who runs which shard: this process, a process pool, accelerate/torchrun ranks, Ray tasks, or one slice
of a job array (`--shard I/N`).

Engines never decide what a shard contains: the plan, fingerprints, resume and refusal of mixed settings are
generate.py's, the same for every engine, so every engine writes the same bytes. Engines only order and
assign pending shards, balanced by an estimate of each config's cost so that the last tasks are short.
"""
from __future__ import annotations

import heapq
import os
from typing import Callable

from .generate import ConfigReport, GenerationError, ShardJob, run_shard
from .registry import ShiftSpec

# Milliseconds per image on one core, decode + geometry + shift + encode, measured on the embedded sample
# photos at 500x375 (ImageNet's typical size) on this project's 2-core machine; GPU shifts are guesses
# for one GPU. Only ratios matter: they order and balance work, they never change an output byte.
COST_MS: dict[str, float] = {
    "clean": 3, "gaussian_noise": 8.5, "shot_noise": 15, "impulse_noise": 7.5, "defocus_blur": 7.5,
    "glass_blur": 16, "motion_blur": 11, "zoom_blur": 11, "snow": 8.5, "frost": 6, "fog": 5, "brightness": 9,
    "contrast": 4.3, "elastic_transform": 10, "pixelate": 3, "jpeg_compression": 2.8, "speckle_noise": 4.8,
    "gaussian_blur": 5, "spatter": 6, "saturate": 6.4, "cartoon_classic": 440, "drawing": 90,
    "toon_handdrawn": 185, "toon_ius": 490, "cartoon": 60, "ai_bg": 5000, "rand_bg": 30,
}
FAMILY_COST_MS = {"clean": 2, "corruptions": 8, "drawing": 90, "toon": 300, "cartoon": 60, "ximagenet": 20}
DEFAULT_COST_MS = 50.0


def config_cost(spec: ShiftSpec) -> float:
    """Estimated ms per image: the config, its shift (without the severity), its family, or a default."""
    shift = spec.name[: -len(f"_{spec.severity}")] if spec.severity else spec.name
    for key in (spec.name, shift, spec.family):
        if key in COST_MS:
            return COST_MS[key]
    if spec.family == "drawing":
        return COST_MS["drawing"]
    return FAMILY_COST_MS.get(spec.family, DEFAULT_COST_MS)


def job_cost(job: ShardJob) -> float:
    return config_cost(job.spec) * max(1, len(job.examples))


def longest_first(jobs: list[ShardJob]) -> list[ShardJob]:
    """Jobs by estimated cost, largest first, ties by path: the same order on every machine."""
    return sorted(jobs, key=lambda j: (-job_cost(j), j.path))


def assign(jobs: list[ShardJob], n: int) -> list[list[ShardJob]]:
    """A deterministic, cost-balanced partition into `n` lists (longest-processing-time-first greedy).

    Depends only on the plan, never on what is on disk, so N processes that never talk to each other
    agree on who does what.
    """
    if n < 1:
        raise GenerationError(f"cannot split work over {n} processes")
    loads = [(0.0, i) for i in range(n)]
    parts: list[list[ShardJob]] = [[] for _ in range(n)]
    for job in longest_first(jobs):
        load, i = heapq.heappop(loads)
        parts[i].append(job)
        heapq.heappush(loads, (load + job_cost(job), i))
    return parts


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (1-based) as given to --shard; SLURM's $SLURM_ARRAY_TASK_ID is 0- or 1-based as you set it."""
    index, sep, count = str(text).partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise GenerationError(f"--shard expects I/N with whole numbers, e.g. --shard 2/8; got {text!r}") from None
    if not sep or n < 1:
        raise GenerationError(f"--shard {text}: N must be at least 1 (e.g. --shard 1/4)")
    if not 1 <= i <= n:
        raise GenerationError(f"--shard {text}: I must be between 1 and {n} (slices are numbered from 1)")
    return i, n


def check_engine(engine: str, ray_address: str | None = None) -> None:
    if engine not in ("local", "ray"):
        raise GenerationError(f"unknown engine {engine!r}: local (processes on this machine) or ray")
    if engine == "ray":
        try:
            import ray
        except ImportError:
            raise GenerationError("--engine ray needs Ray: pip install 'shift-hub[ray]'") from None
        if not ray.is_initialized():  # an initialized Ray is used as it is, whatever the address says
            check_ray_address(ray_address)


RAY_PROBE_TIMEOUT_S = 4.0
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS


def check_ray_address(address: str | None) -> None:
    """The address (or $RAY_ADDRESS) names a Ray head that answers, said in one line in seconds: `ray.init`
    on a dead address, or on a port that is not Ray's, waits for minutes printing C++ warnings."""
    flag = "--ray-address" if address else "$RAY_ADDRESS"
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address in (None, "auto", "local"):  # a new local Ray, or the one `ray start` recorded on this machine
        return
    host, port = _ray_host_port(address, flag)
    drop = "drop --ray-address" if flag == "--ray-address" else "unset RAY_ADDRESS"
    start = f"start a cluster with `ray start --head` and pass the address it prints, or {drop} to run Ray here"
    why = _probe_grpc(host, port)
    if why:
        raise GenerationError(f"{flag} {address}: no Ray cluster answers there ({why}); {start}")


def _ray_host_port(address: str, flag: str) -> tuple[str, int]:
    """(host, port) of `HOST:PORT`, `[IPv6]:PORT` or `ray://HOST:PORT`; anything else is one line naming the flag."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")
    if not (sep and host and port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise GenerationError(f"{flag} {address!r} is not a Ray address: give HOST:PORT of a running Ray head (e.g. "
                              "127.0.0.1:6379, as `ray start --head` prints it), ray://HOST:10001 or auto, or "
                              f"{'drop --ray-address' if flag == '--ray-address' else 'unset RAY_ADDRESS'} to run "
                              "Ray on this machine")
    return host, int(port)


def _probe_grpc(host: str, port: int) -> str | None:
    """Why (host, port) is not a gRPC server such as Ray's GCS, or None: it must accept a connection and answer
    the HTTP/2 preface with a SETTINGS frame (a TLS cluster, RAY_USE_TLS=1, is only connected to)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=RAY_PROBE_TIMEOUT_S) as conn:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return None
            conn.sendall(_HTTP2_PREFACE)
            head = _read_exactly(conn, 9)
    except socket.gaierror:
        return f"unknown host {host}"
    except socket.timeout:
        return f"no answer within {RAY_PROBE_TIMEOUT_S:g} s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if len(head) == 9 and head[3] == 4:  # a frame of type SETTINGS: an HTTP/2 (gRPC) server
        return None
    return "the port is open but is not a Ray head's GCS port, e.g. the dashboard's 8265; Ray's default is 6379"


def _read_exactly(conn, n: int) -> bytes:
    data = b""
    while len(data) < n:
        block = conn.recv(n - len(data))
        if not block:
            break
        data += block
    return data


# --- running ---------------------------------------------------------------------------------------

def run(jobs: list[ShardJob], source, *, state=None, num_proc: int = 1, engine: str = "local",
        ray_address: str | None = None, update: Callable[[int], None] | None = None,
        log: Callable[[str], None] | None = None) -> list[ConfigReport]:
    """Run every job; shards another live run is writing are waited for at the end, then written if that
    run died. Returns one report per job run (busy ones once more after the wait)."""
    check_engine(engine, ray_address)
    jobs = longest_first(jobs)
    reports = _run_with(engine, jobs, source, state, num_proc, ray_address, update, wait=False)
    busy = [j for j, r in zip(jobs, reports) if r.busy]
    if busy:
        from . import folder

        if log:
            log(f"waiting for {len(busy)} shard(s) being written by another run "
                f"({folder.lock_owner(busy[0].path) or 'unknown'}); they are written here if it stops")
        again = _run_with(engine, busy, source, state, num_proc, ray_address, update, wait=True)
        reports = [r for r in reports if not r.busy] + again
    return reports


def _run_with(engine, jobs, source, state, num_proc, ray_address, update, wait: bool) -> list[ConfigReport]:
    if not jobs:
        return []
    if engine == "ray":
        return _ray(jobs, source, ray_address, update, wait)
    if state is not None:
        return _accelerate(jobs, source, state, update, wait)
    if num_proc <= 1 or len(jobs) <= 1:
        return [_counted(run_shard(job, source, update, wait), job, None) for job in jobs]
    return _pool(jobs, source, num_proc, update, wait)


def _counted(report: ConfigReport, job: ShardJob, update) -> ConfigReport:
    if update and not report.busy:
        update(len(job.examples))
    return report


def _pool(jobs, source, num_proc, update, wait) -> list[ConfigReport]:
    """Spawned workers, one thread each, that die with this process; submitted longest first."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from .generate import pool_worker

    with ProcessPoolExecutor(max_workers=num_proc, mp_context=get_context("spawn"), initializer=pool_worker,
                             initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(run_shard, job, source, None, wait) for job in jobs]
        try:
            results = []
            for job, fut in zip(jobs, futures):
                results.append(_counted(fut.result(), job, update))
            return results
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # finished shards stay; a rerun resumes
            raise


def _accelerate(jobs, source, state, update, wait) -> list[ConfigReport]:
    """This rank's cost-balanced share of the pending shards (every rank computes the same partition)."""
    mine = assign(jobs, state.num_processes)[state.process_index]
    reports = [_counted(run_shard(job, source, update, wait), job, None) for job in mine]
    state.wait_for_everyone()
    return reports


# --- Ray -------------------------------------------------------------------------------------------

RAY_RETRIES = 3  # a task whose worker or node dies is run again; its half-written temp file is removed then


def _ray_shard(job: ShardJob, source, wait: bool) -> ConfigReport:
    """The body of one Ray task: the same `run_shard` a local run calls, in a one-thread worker."""
    from .generate import _single_threaded_worker

    _single_threaded_worker()
    try:
        return run_shard(job, source, None, wait)
    except OSError as exc:  # a node that does not see the shared folder (or the source) at the same path
        import socket

        raise GenerationError(f"a Ray worker on {socket.gethostname()} cannot use {exc.filename or job.path} "
                              f"({exc.strerror or type(exc).__name__}): every worker must see --out and the source "
                              "at the same path, e.g. on a shared filesystem") from None


def _ray(jobs, source, address, update, wait) -> list[ConfigReport]:
    import ray  # present: `run` checked the engine

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(_ray_shard)
        source_ref = ray.put(source)
        refs = []
        for job in jobs:  # already longest first: the last tasks to start are the short ones
            options = {"num_cpus": 1, "max_retries": RAY_RETRIES}
            if job.spec.batched and gpus:
                options["num_gpus"] = 1
            refs.append(task.options(**options).remote(job, source_ref, wait))
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[ConfigReport | None] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = index[ref]
                try:
                    results[i] = _counted(ray.get(ref), jobs[i], update)
                except ray.exceptions.RayError as exc:
                    cause = getattr(exc, "cause", None) or exc
                    if isinstance(cause, GenerationError):
                        raise GenerationError(str(cause)) from None
                    raise GenerationError(f"{jobs[i].path}: the Ray task failed after {RAY_RETRIES} retries: "
                                          f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
                                          "; finished shards are kept, rerun to resume") from None
        return results
    finally:
        if started:
            ray.shutdown()
