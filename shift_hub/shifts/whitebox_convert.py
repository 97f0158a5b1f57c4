"""White-box Cartoonization weights: read the official TensorFlow checkpoint, write safetensors, find them.

The release ships a TF1 tensor bundle (`model-33999.index` + `model-33999.data-00000-of-00001`). The
index is a LevelDB-style SSTable whose values are `BundleEntryProto` messages (dtype, shape, shard,
byte offset, size, masked CRC32C); the data file is the raw little-endian tensors back to back. Both
are simple enough to read here, so converting needs neither TensorFlow nor protobuf.

The weights are CC BY-NC-SA 4.0 (the release's licence): anything generated with them inherits
non-commercial terms.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LICENSE_NOTE = (
    "White-box Cartoonization weights (Wang & Yu, CVPR 2020) are CC BY-NC-SA 4.0: "
    "data generated with them is for non-commercial use and shares alike."
)
DEFAULT_FILENAME = "whitebox_generator.safetensors"
RELEASE_URL = "https://github.com/SystemErrorWang/White-box-Cartoonization"
HOW_TO_GET = (
    "Download the official checkpoint (test_code/saved_models/model-33999.index and "
    f"model-33999.data-00000-of-00001 from {RELEASE_URL}), then either convert it once with "
    "`shift-hub convert-whitebox path/to/model-33999.index` (writes the default weights file "
    "{default}) or set SHIFT_HUB_WHITEBOX (or the `weights` parameter) to the .index file, its folder, "
    "a converted .safetensors file, or a Hugging Face Hub repo id holding " + DEFAULT_FILENAME + ". " + LICENSE_NOTE
)

_TABLE_MAGIC = 0xDB4775248B80FB57
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 19: np.float16}  # TF DataType enum


class MissingWeights(FileNotFoundError):
    """The generator weights are not where we looked; the message says how to obtain them."""


class BadCheckpoint(ValueError):
    """The checkpoint is not the White-box generator or its bytes are damaged."""


def default_weights_path() -> Path:
    """Where `convert-whitebox` writes and `cartoon` looks when no weights are named."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "shift_hub" / DEFAULT_FILENAME


def missing_message(looked: str) -> str:
    return f"White-box Cartoonization weights not found ({looked}). " + HOW_TO_GET.format(
        default=default_weights_path()
    )


# --- the torch module's parameter names for each TF variable scope (creation order of slim.conv2d) ---
# slim names unnamed convolutions Conv, Conv_1, ... in the order unet_generator creates them.
TF_TO_TORCH = {
    "generator/Conv": "head",
    "generator/Conv_1": "down1",
    "generator/Conv_2": "down1_expand",
    "generator/Conv_3": "down2",
    "generator/Conv_4": "down2_expand",
    **{f"generator/block_{i}/conv{j}": f"blocks.{i}.conv{j}" for i in range(4) for j in (1, 2)},
    "generator/Conv_5": "bottleneck",
    "generator/Conv_6": "up1",
    "generator/Conv_7": "up1_reduce",
    "generator/Conv_8": "up2",
    "generator/Conv_9": "tail",
}


# --- tensor-bundle index (SSTable of BundleEntryProto) ---
@dataclass(frozen=True)
class BundleEntry:
    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _proto_fields(buf: bytes):
    """Yield (field number, wire type, value) of a serialized protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise BadCheckpoint(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _block_entries(block: bytes):
    """Key/value pairs of one SSTable block (prefix-compressed keys, restart array at the end)."""
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def _read_block(data: bytes, handle: bytes) -> bytes:
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if data[offset + size] != 0:  # trailer byte: compression type
        raise BadCheckpoint("compressed SSTable blocks are not supported (TF writes them uncompressed)")
    return data[offset : offset + size]


def _parse_entry(name: str, value: bytes) -> BundleEntry:
    fields = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0, "crc32c": None}
    for field, _, val in _proto_fields(value):
        if field == 1:
            fields["dtype"] = val
        elif field == 2:  # TensorShapeProto: repeated Dim dim = 2 {int64 size = 1}
            dims = []
            for f, _, dim in _proto_fields(val):
                if f == 2:
                    dims.append(next((v for g, _, v in _proto_fields(dim) if g == 1), 0))
            fields["shape"] = tuple(dims)
        elif field == 3:
            fields["shard_id"] = val
        elif field == 4:
            fields["offset"] = val
        elif field == 5:
            fields["size"] = val
        elif field == 6:
            fields["crc32c"] = val
        elif field == 7:
            raise BadCheckpoint(f"{name}: partitioned (sliced) variables are not supported")
    return BundleEntry(name=name, **fields)


def read_index(index_path: str | os.PathLike) -> dict[str, BundleEntry]:
    """Every tensor the bundle index lists, by variable name (the header entry is checked and dropped)."""
    data = Path(index_path).read_bytes()
    if len(data) < 48 or struct.unpack_from("<Q", data, len(data) - 8)[0] != _TABLE_MAGIC:
        raise BadCheckpoint(f"{index_path}: not a TensorFlow checkpoint index (no SSTable footer)")
    footer = data[-48:]
    _, pos = _varint(footer, 0)  # metaindex handle: offset,
    _, pos = _varint(footer, pos)  # size (unused)
    index_block = _read_block(data, footer[pos:])
    entries: dict[str, BundleEntry] = {}
    for _, handle in _block_entries(index_block):
        for key, value in _block_entries(_read_block(data, handle)):
            if key == b"":  # BundleHeaderProto: num_shards = 1, endianness = 2 (0 little)
                header = {f: v for f, _, v in _proto_fields(value)}
                if header.get(2, 0) != 0:
                    raise BadCheckpoint(f"{index_path}: big-endian checkpoints are not supported")
                if header.get(1, 1) != 1:
                    raise BadCheckpoint(f"{index_path}: sharded checkpoints are not supported")
                continue
            name = key.decode()
            entries[name] = _parse_entry(name, value)
    return entries


def data_path_for(index_path: str | os.PathLike) -> Path:
    index_path = Path(index_path)
    return index_path.with_name(index_path.name[: -len(".index")] + ".data-00000-of-00001")


# --- CRC32C (Castagnoli), masked as TF stores it; a plain table loop (about 1 s for the 5.9 MB file, once) ---
def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc, table = 0xFFFFFFFF, _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- conversion ---
def torch_name(tf_name: str) -> str | None:
    """`generator/Conv_3/weights` -> `down2.weight`; None for variables outside the generator."""
    scope, _, leaf = tf_name.rpartition("/")
    if scope not in TF_TO_TORCH or leaf not in ("weights", "biases"):
        return None
    return f"{TF_TO_TORCH[scope]}.{'weight' if leaf == 'weights' else 'bias'}"


def read_generator(index_path: str | os.PathLike, verify_checksums: bool = True) -> dict[str, np.ndarray]:
    """The generator's tensors from a TF checkpoint, keyed by torch name, conv kernels as OIHW."""
    index_path = Path(index_path)
    if not index_path.is_file():
        raise MissingWeights(missing_message(f"no checkpoint index at {index_path}"))
    data_path = data_path_for(index_path)
    if not data_path.is_file():
        raise MissingWeights(missing_message(f"{data_path.name} must sit beside {index_path.name}"))
    entries = read_index(index_path)
    wanted = {torch_name(n): e for n, e in entries.items() if torch_name(n)}
    missing = sorted(f"{s}.{p}" for s in TF_TO_TORCH.values() for p in ("weight", "bias") if f"{s}.{p}" not in wanted)
    if missing:
        raise BadCheckpoint(f"{index_path}: not the White-box generator; missing {', '.join(missing)}")
    size = data_path.stat().st_size
    needed = max(e.offset + e.size for e in wanted.values())
    if size < needed:
        raise BadCheckpoint(f"{data_path}: {size} bytes, but the index needs {needed}; the file is truncated")
    out: dict[str, np.ndarray] = {}
    with open(data_path, "rb") as f:
        for name, entry in sorted(wanted.items()):
            dtype = _DTYPES.get(entry.dtype)
            if dtype is None or entry.size != int(np.prod(entry.shape)) * np.dtype(dtype).itemsize:
                raise BadCheckpoint(f"{entry.name}: unexpected dtype {entry.dtype} or size {entry.size}")
            f.seek(entry.offset)
            raw = f.read(entry.size)
            if verify_checksums and entry.crc32c is not None and masked_crc32c(raw) != entry.crc32c:
                raise BadCheckpoint(f"{entry.name}: CRC32C mismatch; {data_path.name} is damaged or from another checkpoint")
            arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(entry.shape)
            if arr.ndim == 4:  # TF conv kernels are HWIO; torch wants OIHW
                arr = arr.transpose(3, 2, 0, 1)
            out[name] = np.ascontiguousarray(arr, dtype=np.float32)
    return out


def convert_checkpoint(
    index_path: str | os.PathLike, out_safetensors: str | os.PathLike | None = None, verify_checksums: bool = True
) -> Path:
    """Convert the official checkpoint to safetensors (default: `default_weights_path()`); returns the path.

    Everything is read and checked before anything is written, and the file appears atomically.
    """
    from safetensors.numpy import save_file

    tensors = read_generator(index_path, verify_checksums=verify_checksums)
    out = Path(out_safetensors) if out_safetensors else default_weights_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    meta = {"source": f"{Path(index_path).name} ({RELEASE_URL})", "license": "CC BY-NC-SA 4.0", "layout": "OIHW"}
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, out)
    return out


# --- finding weights: a local file or folder, or a Hub repo id (cached files work offline) ---
def resolve_weights(weights: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Generator tensors from `weights`: None ($SHIFT_HUB_WHITEBOX if set, else the default file), a
    .safetensors or .index file, a folder holding either, or a Hub repo id with
    `whitebox_generator.safetensors` (a cached download works offline). Raises MissingWeights."""
    if (weights is None or str(weights) == "") and os.environ.get("SHIFT_HUB_WHITEBOX"):
        weights = os.environ["SHIFT_HUB_WHITEBOX"]  # a path or a Hub repo id, like --weights
    if weights is None or str(weights) == "":
        path = default_weights_path()
        if not path.is_file():
            raise MissingWeights(missing_message(f"default file {path} does not exist"))
        return _load_safetensors(path)
    path = Path(weights).expanduser()
    if path.is_dir():
        candidates = [path / DEFAULT_FILENAME, *sorted(path.glob("*.safetensors")), *sorted(path.glob("*.index"))]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise MissingWeights(missing_message(f"no .safetensors or .index file in {path}"))
        path = found
    if path.is_file():
        if path.suffix == ".index":
            return read_generator(path)
        return _load_safetensors(path)
    if path.suffix in (".safetensors", ".index") or path.is_absolute() or str(weights).count("/") != 1:
        raise MissingWeights(missing_message(f"{weights} does not exist"))
    return _load_safetensors(_hub_download(str(weights)))


def _hub_download(repo_id: str) -> Path:
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id, DEFAULT_FILENAME))
    except Exception as exc:  # offline and not cached, no such repo, no such file
        raise MissingWeights(missing_message(f"Hub repo {repo_id}: {type(exc).__name__}: {exc}")) from None


def _load_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))
