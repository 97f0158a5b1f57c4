"""Who runs which job group: this process, a process pool, accelerate/torchrun ranks, Ray tasks, or one
slice of a job array (`--shard I/N`).

Engines never decide what a shard contains: the plan, fingerprints and resume are planning.py's and
worker.py's, the same for every engine, so every engine writes the same bytes. Engines receive job groups
and the function that runs one (`run_group(group, source, progress, wait) -> [ConfigReport]`); they order,
split and assign them, balanced by an estimate of each config's cost so that the last tasks are short. They
import nothing above them: only the job types, the registry and worker hygiene.
"""
from __future__ import annotations

import dataclasses
import heapq
import math
import os
from typing import Callable

from . import hygiene
from .jobs import ConfigReport, GenerationError, JobGroup, ShardJob
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
    "color_quant": 2.5, "iso_noise": 10, "low_light": 9.5, "watermark": 16,  # 3DCC 2-D, ImageNet-W (PNG)
    "backgrounds": 18, "in9_mixed_same": 65, "in9_mixed_rand": 65, "in9_mixed_next": 65,  # ImageNet-9, 500 px photos
    # ImageNet-C-bar, shift_image at 224
    "caustic_refraction": 36, "inverse_sparkles": 5.4, "sparkles": 14, "perlin_noise": 12, "blue_noise_sample": 5.8,
    "plasma_noise": 12.5, "checkerboard_cutout": 4.3, "cocentric_sine_waves": 4.1, "single_frequency_greyscale": 3.5,
    "brownish_noise": 11.6,
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


def job_cost(job) -> float:
    """Estimated cost of a shard job, or of a job group (the sum of its jobs: the shared decode is cheap)."""
    if isinstance(job, JobGroup):
        return sum(job_cost(j) for j in job.jobs)
    return config_cost(job.spec) * max(1, len(job.examples))


def longest_first(jobs: list) -> list:
    """Jobs (or groups) by estimated cost, largest first, ties by path: the same order on every machine."""
    return sorted(jobs, key=lambda j: (-job_cost(j), j.path))


def assign(jobs: list, n: int) -> list[list]:
    """A deterministic, cost-balanced partition of jobs or groups into `n` lists (longest-processing-time-first
    greedy).

    Depends only on the plan, never on what is on disk, so N processes that never talk to each other
    agree on who does what.
    """
    if n < 1:
        raise GenerationError(f"cannot split work over {n} processes")
    loads = [(0.0, i) for i in range(n)]
    parts: list[list] = [[] for _ in range(n)]
    for job in longest_first(jobs):
        load, i = heapq.heappop(loads)
        parts[i].append(job)
        heapq.heappush(loads, (load + job_cost(job), i))
    return parts


def spread(groups: list[JobGroup], n: int) -> list[JobGroup]:
    """Groups cut so that `n` workers end together, with as few cuts as that needs: laid end to end in plan
    order over n equal spans of cost (McNaughton's wrap-around rule), each config goes to the span holding
    its midpoint, and a group is cut where a span ends. So each span is one worker's fair share, and a group
    is split in at most (its cost / share) + 2 parts, each still decoding each image once. With one worker
    nothing is cut: every config of a group shares one decode."""
    if n <= 1 or not groups:
        return list(groups)
    share = sum(job_cost(g) for g in groups) / n
    if share <= 0:
        return list(groups)
    out: list[JobGroup] = []
    done = 0.0
    for group in sorted(groups, key=lambda g: g.path):
        spans: dict[int, list[ShardJob]] = {}
        for job in group.jobs:
            cost = job_cost(job)
            spans.setdefault(min(n - 1, int((done + cost / 2) / share)), []).append(job)
            done += cost
        out.extend(JobGroup(tuple(part)) for part in spans.values())
    return out


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

RunGroup = Callable[..., list]  # (group, source, progress, wait) -> one ConfigReport per job of the group


def run(groups: list[JobGroup], source, run_group: RunGroup, *, state=None, num_proc: int = 1, engine: str = "local",
        ray_address: str | None = None, update: Callable[[int], None] | None = None,
        log: Callable[[str], None] | None = None) -> list[ConfigReport]:
    """Run every group with `run_group`; shards another live run is writing are waited for at the end, one
    at a time, then written if that run died. Returns the reports of every job run (busy ones once more)."""
    check_engine(engine, ray_address)
    reports = _run_with(engine, groups, source, run_group, state, num_proc, ray_address, update, wait=False)
    jobs = {j.path: j for g in groups for j in g.jobs}
    busy = [jobs[p] for p in sorted({r.path for r in reports if r.busy})] if any(r.busy for r in reports) else []
    if busy:
        from . import folder

        if log:
            log(f"waiting for {len(busy)} shard(s) being written by another run "
                f"({folder.lock_owner(busy[0].path) or 'unknown'}); they are written here if it stops")
        alone = [JobGroup((job,)) for job in busy]  # one lock at a time while waiting: no two runs deadlock
        again = _run_with(engine, alone, source, run_group, state, num_proc, ray_address, update, wait=True)
        reports = [r for r in reports if not r.busy] + again
    return [r.report for r in reports]


@dataclasses.dataclass
class _Ran:
    report: ConfigReport
    path: str

    @property
    def busy(self) -> bool:
        return self.report.busy


def _run_with(engine, groups, source, run_group, state, num_proc, ray_address, update, wait: bool) -> list[_Ran]:
    if not groups:
        return []
    if engine == "ray":
        return _ray(groups, source, run_group, ray_address, update, wait)
    if state is not None:
        return _accelerate(groups, source, run_group, state, update, wait)
    if num_proc <= 1:
        return [r for g in longest_first(groups) for r in _ran(g, run_group(g, source, update, wait), None)]
    return _pool(longest_first(spread(groups, num_proc)), source, run_group, num_proc, update, wait)


def _ran(group: JobGroup, reports: list[ConfigReport], update) -> list[_Ran]:
    """Reports paired with their shard; the progress of a group run elsewhere is counted when it returns."""
    if update:
        update(sum(len(j.examples) for j, r in zip(group.jobs, reports) if not r.busy))
    return [_Ran(r, j.path) for j, r in zip(group.jobs, reports)]


def _pool(groups, source, run_group, num_proc, update, wait) -> list[_Ran]:
    """Spawned workers, one thread each, that die with this process; submitted longest first."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    _check_sendable(source, run_group, groups[0])

    with ProcessPoolExecutor(max_workers=num_proc, mp_context=get_context("spawn"), initializer=hygiene.pool_worker,
                             initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(run_group, group, source, None, wait) for group in groups]
        try:
            results = []
            for group, fut in zip(groups, futures):
                results.extend(_ran(group, fut.result(), update))
            return results
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # finished shards stay; a rerun resumes
            raise


def _check_sendable(*items) -> None:
    """What the workers receive must pickle: a failure inside the pool's feeder thread leaves the pool unable
    to shut down (the run hangs at exit instead of failing), so it is tried here, with a message saying why."""
    import pickle

    for item in items:
        try:
            pickle.dumps(item)
        except Exception as exc:  # PicklingError, AttributeError (a local class), TypeError (a lock, a file)
            raise GenerationError(f"{type(item).__name__} cannot be sent to worker processes ({exc}): define it at "
                                  "module level and keep no open files or locks in it, or use --num-proc 1") from None


def _accelerate(groups, source, run_group, state, update, wait) -> list[_Ran]:
    """This rank's cost-balanced share of the pending groups (every rank computes the same partition)."""
    mine = assign(spread(groups, state.num_processes), state.num_processes)[state.process_index]
    results = [r for g in mine for r in _ran(g, run_group(g, source, update, wait), None)]
    state.wait_for_everyone()
    return results


def distributed_state():
    """accelerate's state under a multi-process launch (WORLD_SIZE > 1), else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        import torch
        from accelerate import PartialState

        # without cpu=True accelerate ignores a torchrun launch on a machine with no GPU (every process alone)
        cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")
        state = PartialState(cpu=cpu)
        if state.num_processes != world:
            raise GenerationError(f"WORLD_SIZE={world} but accelerate sees {state.num_processes} process(es): "
                                  "launch with `accelerate launch --multi_gpu` or `torchrun --nproc_per_node N`")
        return state
    return None


# --- Ray -------------------------------------------------------------------------------------------

RAY_RETRIES = 3  # a task whose worker or node dies is run again; its half-written temp file is removed then


def _ray_shard(run_group, group: JobGroup, source, wait: bool) -> list[ConfigReport]:  # its name shows in `ps`
    """The body of one Ray task: the same `run_group` a local run calls, in a one-thread worker."""
    hygiene.single_threaded_worker()
    try:
        return run_group(group, source, None, wait)
    except OSError as exc:  # a node that does not see the shared folder (or the source) at the same path
        import socket

        raise GenerationError(f"a Ray worker on {socket.gethostname()} cannot use {exc.filename or group.path} "
                              f"({exc.strerror or type(exc).__name__}): every worker must see --out and the source "
                              "at the same path, e.g. on a shared filesystem") from None


def _ray(groups, source, run_group, address, update, wait) -> list[_Ran]:
    import ray  # present: `run` checked the engine

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        groups = longest_first(spread(groups, max(1, int(resources.get("CPU", 1)))))
        task = ray.remote(_ray_shard)
        source_ref = ray.put(source)
        refs = []
        for group in groups:  # longest first: the last tasks to start are the short ones
            options = {"num_cpus": 1, "max_retries": RAY_RETRIES}
            if any(j.spec.batched for j in group.jobs) and gpus:
                options["num_gpus"] = 1
            refs.append(task.options(**options).remote(run_group, group, source_ref, wait))
        index = {ref: i for i, ref in enumerate(refs)}
        results: list = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = index[ref]
                try:
                    results[i] = _ran(groups[i], ray.get(ref), update)
                except ray.exceptions.RayError as exc:
                    cause = getattr(exc, "cause", None) or exc
                    if isinstance(cause, GenerationError):
                        raise GenerationError(str(cause)) from None
                    raise GenerationError(f"{groups[i].path}: the Ray task failed after {RAY_RETRIES} retries: "
                                          f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
                                          "; finished shards are kept, rerun to resume") from None
        return [r for part in results for r in part]
    finally:
        if started:
            ray.shutdown()
