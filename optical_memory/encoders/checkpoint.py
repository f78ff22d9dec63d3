"""Read the official DeepSeek-OCR checkpoint folder into transformers' ``unlimited_ocr`` classes.

Users download DeepSeek-OCR as a folder (``config.json`` with ``"model_type": "deepseek_vl_v2"``,
``model-00001-of-000001.safetensors`` with its ``model.safetensors.index.json``, ``tokenizer.json``, ...).
transformers 5.23 carries the DeepSeek-OCR v1 network as ``unlimited_ocr``, and its
``conversion_mapping.py`` renames the official tensor names onto it (``sam_model`` -> ``vision_tower.
sam_encoder``, CLIP's fused ``qkv_proj`` split into q/k/v, the 64 experts of each MoE layer merged into 3-D
tensors, ...). This module is the bridge, used by the encoder and by the recall reader:

- :func:`load_checkpoint_dir` finds the files and refuses pickle checkpoints;
- :func:`translate_config` turns the official ``config.json`` into an :class:`UnlimitedOcrConfig`, with
  full attention in every text layer (Unlimited-OCR's default 128-token sliding window drifts from
  DeepSeek-OCR after 128 decoded tokens);
- :func:`load_vision_model` reads only the vision tensors (memory-mapped with ``safetensors.safe_open``) into
  :class:`DeepEncoderModel`, an ``UnlimitedOcrModel`` without its language model;
- :func:`load_model` reads everything into ``UnlimitedOcrForConditionalGeneration`` (for recall);
- :func:`embedding_table` maps the language model's ``model.embed_tokens.weight`` from its file without
  reading it (numpy ``memmap``), so building ``inputs_embeds`` reads only the rows of the ids it looks up.

Both loaders hand transformers' own ``from_pretrained`` a lazy state dict, so its conversion mapping does the
renaming, and then check its loading report: a missing, unexpected or mis-shaped tensor is a
:class:`~optical_memory.errors.CheckpointError` that names the keys.

Sources: DeepSeek-OCR ``config.json`` / ``model.safetensors.index.json`` (HF ``deepseek-ai/DeepSeek-OCR``),
``deepencoder.py`` (SAM ``mlp_ratio`` 4, neck 256 channels, CLIP FFN 4096 = 4 x width), transformers 5.23
``models/unlimited_ocr`` and ``conversion_mapping.py`` (``"unlimited_ocr"`` entries).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optical_memory.encoders._config import translate_config
from optical_memory.errors import CheckpointError, InputError, MissingDependencyError

if TYPE_CHECKING:
    import torch
    from transformers import UnlimitedOcrConfig, UnlimitedOcrForConditionalGeneration

__all__ = [
    "LANGUAGE_PREFIXES",
    "VISION_PREFIXES",
    "CheckpointFiles",
    "EmbeddingTable",
    "embedding_table",
    "is_language_key",
    "is_vision_key",
    "load_checkpoint_dir",
    "load_model",
    "load_vision_model",
    "read_config",
    "translate_config",
    "vision_fingerprint",
]

logger = logging.getLogger(__name__)

VISION_PREFIXES: tuple[str, ...] = (
    "model.sam_model.",
    "model.vision_model.",
    "model.projector.",
    "model.image_newline",
    "model.view_seperator",  # sic: the official checkpoint's spelling
)
"""Official tensor-name prefixes of the DeepEncoder (SAM, CLIP, projector, newline, separator)."""

LANGUAGE_PREFIXES: tuple[str, ...] = ("model.embed_tokens.", "model.layers.", "model.norm.", "lm_head.")
"""Official tensor-name prefixes of the language model."""

MAX_HEADER_BYTES = 100 * 1024 * 1024
"""Largest safetensors header (the JSON table of tensors at the start of a file) accepted, in bytes. The
official DeepSeek-OCR file's is about 300 kB; the length is checked before a file is handed to safetensors
or its header read, so a corrupt or hostile file cannot make either allocate gigabytes."""

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_INDEX_NAME = "model.safetensors.index.json"


def is_vision_key(key: str) -> bool:
    """True for an official tensor name that belongs to the DeepEncoder."""
    return key.startswith(VISION_PREFIXES)


def is_language_key(key: str) -> bool:
    """True for an official tensor name that belongs to the language model (or its head)."""
    return key.startswith(LANGUAGE_PREFIXES)


@dataclass(frozen=True, slots=True)
class CheckpointFiles:
    """The files of a DeepSeek-OCR checkpoint folder.

    Attributes:
        root: The folder.
        config_path: Its ``config.json``.
        weight_map: Official tensor name -> the safetensors file holding it.
        tokenizer_path: ``tokenizer.json`` when present, else None.
    """

    root: Path
    config_path: Path
    weight_map: Mapping[str, Path] = field(repr=False)
    tokenizer_path: Path | None = None

    @property
    def weight_files(self) -> tuple[Path, ...]:
        """The safetensors files, sorted."""
        return tuple(sorted(set(self.weight_map.values())))

    def keys(self, *, vision_only: bool = False) -> list[str]:
        """Official tensor names, sorted; with ``vision_only`` the DeepEncoder's and any unknown ones."""
        keys = sorted(self.weight_map)
        return [k for k in keys if not is_language_key(k)] if vision_only else keys

    def official_config(self) -> dict[str, Any]:
        """The parsed ``config.json``.

        Raises:
            CheckpointError: If it is not valid JSON.
        """
        try:
            data = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read {self.config_path}: {exc}") from exc
        if not isinstance(data, dict):
            raise CheckpointError(f"{self.config_path} does not hold a JSON object")
        return data


def load_checkpoint_dir(path: str | Path) -> CheckpointFiles:
    """Find the config and safetensors files of a checkpoint folder (nothing is downloaded).

    The weights are located through ``model.safetensors.index.json`` when present, else every
    ``*.safetensors`` file in the folder is read for its tensor names (a single file, or a file holding
    only the vision tensors, works).

    Raises:
        CheckpointError: If the folder or ``config.json`` is missing, the index names a missing file, there
            are no safetensors files, or the folder holds only pickle checkpoints (``*.bin``, ``*.pt``,
            ``*.pth``, ``*.ckpt``), which are refused because unpickling can run arbitrary code.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {root}")
    config_path = root / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"checkpoint folder {root} has no config.json")
    index_path = root / _INDEX_NAME
    weight_map = _read_index(root, index_path) if index_path.is_file() else _scan_safetensors(root)
    tokenizer = root / "tokenizer.json"
    return CheckpointFiles(root, config_path, weight_map, tokenizer if tokenizer.is_file() else None)


def _read_index(root: Path, index_path: Path) -> dict[str, Path]:
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        raw_map = index["weight_map"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"cannot read {index_path}: {exc}") from exc
    files = {name: root / name for name in set(raw_map.values())}
    missing = sorted(name for name, file in files.items() if not file.is_file())
    if missing:
        raise CheckpointError(f"{index_path.name} names files missing from {root}: {', '.join(missing)}")
    return {key: files[name] for key, name in raw_map.items()}


def _scan_safetensors(root: Path) -> dict[str, Path]:
    files = sorted(root.glob("*.safetensors"))
    if not files:
        pickles = sorted(p.name for p in root.iterdir() if p.suffix in _PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(
                f"{root} holds only pickle checkpoints ({', '.join(pickles)}), which are refused because "
                "loading them can run arbitrary code: convert them to safetensors "
                "(for example with safetensors.torch.save_file) and try again"
            )
        raise CheckpointError(f"checkpoint folder {root} has no *.safetensors weights")
    weight_map: dict[str, Path] = {}
    for file in files:
        with _open_safetensors(file) as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                weight_map[key] = file
    return weight_map


def read_config(files: CheckpointFiles | str | Path) -> UnlimitedOcrConfig:
    """The checkpoint's ``config.json`` translated to an ``unlimited_ocr`` config.

    Raises:
        CheckpointError: See :func:`load_checkpoint_dir` and :func:`translate_config`.
    """
    files = files if isinstance(files, CheckpointFiles) else load_checkpoint_dir(files)
    return translate_config(files.official_config())


def load_vision_model(
    path: str | Path | CheckpointFiles,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[Any, UnlimitedOcrConfig]:
    """Load only the DeepEncoder (SAM, CLIP, projector, newline, separator) from a checkpoint folder.

    Only the vision tensors are read (memory-mapped), so a file holding nothing else works too.

    Args:
        path: The checkpoint folder (or what :func:`load_checkpoint_dir` returned for it).
        device: Where to put the weights (default CPU).
        dtype: Weight dtype (default float32).

    Returns:
        The ``DeepEncoderModel`` (an ``UnlimitedOcrModel`` without the language model) in eval mode, whose
        ``get_image_features`` is transformers' own, and the translated config.

    Raises:
        CheckpointError: If files are missing, or a vision tensor is missing, unexpected or mis-shaped.
        MissingDependencyError: If torch, transformers or safetensors is not installed.
    """
    from optical_memory.encoders._vision_model import deep_encoder_class

    files = path if isinstance(path, CheckpointFiles) else load_checkpoint_dir(path)
    config = read_config(files)
    keys = files.keys(vision_only=True)
    if not any(is_vision_key(k) for k in keys):
        raise CheckpointError(f"{files.root} holds no DeepEncoder tensors (model.sam_model.*, ...)")
    model = _from_state_dict(deep_encoder_class(), files, keys, config, device, dtype)
    return model, config


def load_model(
    path: str | Path | CheckpointFiles,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[UnlimitedOcrForConditionalGeneration, UnlimitedOcrConfig]:
    """Load the whole DeepSeek-OCR model (DeepEncoder, MoE language model, ``lm_head``) for recall.

    Args:
        path: The checkpoint folder (or what :func:`load_checkpoint_dir` returned for it).
        device: Where to put the weights (default CPU).
        dtype: Weight dtype (default float32).

    Returns:
        ``UnlimitedOcrForConditionalGeneration`` in eval mode and its translated config.

    Raises:
        CheckpointError: If files are missing, or a tensor is missing, unexpected or mis-shaped.
        MissingDependencyError: If torch, transformers or safetensors is not installed.
    """
    try:
        from transformers import UnlimitedOcrForConditionalGeneration
    except ImportError as exc:
        raise MissingDependencyError("transformers", "model", "the DeepSeek-OCR model") from exc

    files = path if isinstance(path, CheckpointFiles) else load_checkpoint_dir(path)
    config = read_config(files)
    model = _from_state_dict(UnlimitedOcrForConditionalGeneration, files, files.keys(), config, device, dtype)
    return model, config


EMBED_KEY = "model.embed_tokens.weight"
_MEMMAP_DTYPES = {"F32": ("<f4", "float32"), "F16": ("<f2", "float16"), "BF16": ("<i2", "bfloat16")}


@dataclass(frozen=True, slots=True)
class EmbeddingTable:
    """The language model's token embeddings, memory-mapped from a safetensors file.

    Attributes:
        weight: A read-only numpy ``memmap`` of shape (vocab, hidden); bfloat16 tables hold their 16-bit
            patterns as int16 (numpy has no bfloat16).
        dtype: The tensor's dtype name: ``float32``, ``float16`` or ``bfloat16``.
    """

    weight: Any = field(repr=False)
    dtype: str

    @property
    def shape(self) -> tuple[int, int]:
        """(vocabulary size, hidden size)."""
        return (int(self.weight.shape[0]), int(self.weight.shape[1]))

    def lookup(self, ids: Any) -> torch.Tensor:
        """Rows of the table for a 1-D array of ids, as a torch tensor in the table's dtype.

        Raises:
            InputError: If an id is outside the vocabulary.
        """
        import numpy as np
        import torch

        index = np.asarray(ids, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= self.shape[0]):
            raise InputError(f"token ids must lie in [0, {self.shape[0]}); got {index.min()}..{index.max()}")
        rows = np.array(self.weight[index])  # (n, hidden): only these rows are read from the file
        tensor = torch.from_numpy(rows)
        return tensor.view(torch.bfloat16) if self.dtype == "bfloat16" else tensor


def embedding_table(files: CheckpointFiles | str | Path) -> EmbeddingTable | None:
    """Memory-map ``model.embed_tokens.weight`` of a checkpoint folder (None when it holds no such tensor).

    Raises:
        CheckpointError: If the safetensors header cannot be read or the tensor has an unsupported dtype
            or shape.
    """
    import numpy as np

    files = files if isinstance(files, CheckpointFiles) else load_checkpoint_dir(files)
    file = files.weight_map.get(EMBED_KEY)
    if file is None:
        return None
    data_start, header = _read_header(file)
    entry = header.get(EMBED_KEY)
    if not isinstance(entry, dict):
        raise CheckpointError(f"{file.name} does not hold {EMBED_KEY} (named in the index)")
    kind = _MEMMAP_DTYPES.get(str(entry.get("dtype")))
    try:
        shape = tuple(int(x) for x in entry.get("shape", ()))
    except (TypeError, ValueError):
        shape = ()
    if kind is None or len(shape) != 2:
        raise CheckpointError(
            f"{EMBED_KEY} in {file.name} has dtype {entry.get('dtype')} and shape {shape}; expected a 2-D "
            "F32, F16 or BF16 tensor"
        )
    begin, end = _data_span(file, EMBED_KEY, entry, data_start)
    if shape[0] * shape[1] * np.dtype(kind[0]).itemsize != end - begin:
        raise CheckpointError(
            f"{EMBED_KEY} in {file.name} has shape {shape} but {end - begin:,} bytes of data; the file is "
            "corrupt: download it again"
        )
    weight = np.memmap(file, dtype=kind[0], mode="r", offset=data_start + begin, shape=shape)
    return EmbeddingTable(weight, kind[1])


_SAMPLE = 1 << 16  # bytes hashed from each end and the middle of a large tensor


def vision_fingerprint(files: CheckpointFiles) -> str:
    """A stable name for the DeepEncoder weights of a checkpoint: ``deepseek-ocr:<24 hex digits>``.

    The sha256 covers each vision tensor's name, dtype and shape, the whole bytes of tensors up to 192 KiB and
    three 64 KiB samples (start, middle, end) of larger ones. It reads about 25 MB, does not depend on the
    folder's path or on which file holds the tensors (a vision-only file gives the same fingerprint), and
    changes when the weights or their dtype do.

    Raises:
        CheckpointError: If a safetensors header cannot be read.
    """
    digest = hashlib.sha256(b"deepseek-ocr-vision/1")
    headers: dict[Path, tuple[int, dict[str, Any]]] = {}
    for key in files.keys(vision_only=True):
        if not is_vision_key(key):
            continue
        file = files.weight_map[key]
        if file not in headers:
            headers[file] = _read_header(file)
        data_start, header = headers[file]
        entry = header.get(key)
        if not isinstance(entry, dict):
            raise CheckpointError(f"{file.name} does not hold {key} (named in the index)")
        begin, end = _data_span(file, key, entry, data_start)
        digest.update(f"{key}|{entry.get('dtype')}|{entry.get('shape')}|".encode())
        size = end - begin
        with file.open("rb") as fh:
            spans = (
                [(0, size)]
                if size <= 3 * _SAMPLE
                else [(0, _SAMPLE), (size // 2 - _SAMPLE // 2, _SAMPLE), (size - _SAMPLE, _SAMPLE)]
            )
            for offset, length in spans:
                fh.seek(data_start + begin + offset)
                digest.update(fh.read(length))
    return "deepseek-ocr:" + digest.hexdigest()[:24]


def _header_length(file: Path) -> int:
    """The length of a safetensors file's JSON header, checked before anything reads the header.

    Raises:
        CheckpointError: If the file cannot be read, is shorter than the 8-byte length, declares a header
            over :data:`MAX_HEADER_BYTES`, or one that runs past the end of the file.
    """
    try:
        with file.open("rb") as fh:
            prefix = fh.read(8)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise CheckpointError(f"cannot read the safetensors file {file}: {exc.strerror or exc}") from None
    if len(prefix) < 8:
        raise CheckpointError(
            f"{file} is not a safetensors file: it holds {len(prefix)} bytes; download it again"
        )
    (length,) = struct.unpack("<Q", prefix)
    if length > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{file} declares a {length:,}-byte safetensors header, over the {MAX_HEADER_BYTES:,}-byte cap "
            "(optical_memory.encoders.checkpoint.MAX_HEADER_BYTES): the file is corrupt or not safetensors; "
            "download it again"
        )
    if 8 + length > size:
        raise CheckpointError(
            f"{file} declares a {length:,}-byte safetensors header but holds only {size:,} bytes: the file "
            "is truncated; download it again"
        )
    return int(length)


def _read_header(file: Path) -> tuple[int, dict[str, Any]]:
    """(offset of the data section, parsed JSON header) of a safetensors file.

    Raises:
        CheckpointError: See :func:`_header_length`; also for a header that is not a JSON object.
    """
    length = _header_length(file)
    try:
        with file.open("rb") as fh:
            fh.seek(8)
            header = json.loads(fh.read(length))
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"cannot read the safetensors header of {file}: {exc}") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"the safetensors header of {file} is not a JSON object; download it again")
    return 8 + length, header


def _data_span(file: Path, key: str, entry: Mapping[str, Any], data_start: int) -> tuple[int, int]:
    """A header entry's ``data_offsets`` (relative to the data section), checked to lie within the file.

    Raises:
        CheckpointError: If the offsets are missing, malformed, or past the end of the file.
    """
    try:
        begin, end = (int(x) for x in entry["data_offsets"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{file.name}: {key} has no valid data_offsets ({exc!r})") from None
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"cannot read the safetensors file {file}: {exc.strerror or exc}") from None
    if not 0 <= begin <= end or data_start + end > size:
        raise CheckpointError(
            f"{file.name}: {key} spans bytes {begin}..{end} of the data, past the end of the file "
            f"({size:,} bytes): the file is truncated or corrupt; download it again"
        )
    return begin, end


@contextlib.contextmanager
def _open_safetensors(file: Path) -> Iterator[Any]:
    """``safetensors.safe_open`` (memory-mapped, torch), after :func:`_header_length` checked the header.

    Raises:
        CheckpointError: If the header is absurd or safetensors cannot read the file.
        MissingDependencyError: If safetensors is not installed.
    """
    _header_length(file)
    safe_open = _safe_open()
    from safetensors import SafetensorError

    try:
        handle = safe_open(str(file), framework="pt")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the safetensors file {file}: {exc}") from exc
    with handle:
        yield handle


def _safe_open() -> Any:
    try:
        from safetensors import safe_open
    except ImportError as exc:
        raise MissingDependencyError("safetensors", "model", "reading a DeepSeek-OCR checkpoint") from exc
    return safe_open


def _from_state_dict(
    model_class: Any,
    files: CheckpointFiles,
    keys: list[str],
    config: UnlimitedOcrConfig,
    device: str | torch.device | None,
    dtype: torch.dtype | None,
) -> Any:
    """``from_pretrained`` on a lazy, memory-mapped state dict of ``keys``, then validate the report."""
    import torch

    with contextlib.ExitStack() as stack:
        handles, held = {}, {}
        for file in sorted({files.weight_map[k] for k in keys}):
            handles[file] = stack.enter_context(_open_safetensors(file))  # memory-mapped
            held[file] = set(handles[file].keys())
        state_dict = {}
        for key in keys:
            file = files.weight_map[key]
            if key not in held[file]:
                raise CheckpointError(f"{file.name} does not hold {key} (named in the index)")
            state_dict[key] = handles[file].get_slice(key)  # read when transformers copies it
        with _quiet_transformers():
            model, info = model_class.from_pretrained(
                None,
                config=config,
                state_dict=state_dict,
                dtype=dtype or torch.float32,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # reported below as a CheckpointError, naming the keys
            )
    _check_report(files.root, info, _official_names(model, keys))
    if device is not None:
        model = model.to(device)
    return model.eval()


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bar and load report for one call (this library never prints; a bad
    checkpoint becomes a CheckpointError instead), restoring the previous settings afterwards."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logger = logging.getLogger("transformers")
    level = hf_logger.level
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logger.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _official_names(model: Any, keys: list[str]) -> dict[str, str]:
    """Model tensor name -> official name, to show both in error messages (best effort: {} on failure)."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

        transforms = get_model_conversion_mapping(model)
        renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
        converters = [t for t in transforms if isinstance(t, WeightConverter)]
        expected = dict.fromkeys(model.state_dict(), True)
        names = {}
        for key in keys:
            renamed, _ = rename_source_key(key, renamings, converters, model.base_model_prefix, expected)
            names[renamed] = key
        return names
    except Exception:  # a hint only: never hide the real error behind a failure here
        logger.debug("could not map model tensor names back to the checkpoint's", exc_info=True)
        return {}


def _check_report(root: Path, info: Mapping[str, Any], official: Mapping[str, str]) -> None:
    """Turn transformers' loading report into a CheckpointError that names every bad key."""

    def name(key: str) -> str:
        source = official.get(key)
        return f"{key} (in the file: {source})" if source and source != key else key

    problems = []
    mismatched = sorted(info.get("mismatched_keys") or ())
    if mismatched:
        lines = [
            f"  {name(k)}: checkpoint {tuple(got)}, model expects {tuple(want)}"
            for k, got, want in mismatched
        ]
        problems.append("mis-shaped tensors:\n" + "\n".join(lines))
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        problems.append("missing tensors (model names):\n" + "\n".join(f"  {k}" for k in missing))
    unexpected = sorted(info.get("unexpected_keys") or ())
    if unexpected:
        problems.append("unexpected tensors:\n" + "\n".join(f"  {name(k)}" for k in unexpected))
    errors = list(info.get("error_msgs") or ())
    if errors:
        problems.append("errors:\n" + "\n".join(f"  {e}" for e in errors))
    if problems:
        raise CheckpointError(
            f"the checkpoint in {root} does not match the DeepSeek-OCR architecture of its config.json; "
            + "\n".join(problems)
        )
