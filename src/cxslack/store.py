"""The local config store: where files live, the inter-process lock, atomic TOML writes.

config.toml holds no secrets; credentials.toml holds every secret and is 0600 from the moment
it exists. Every read-modify-write happens inside `Store.transaction()`, which holds an
exclusive lock on a lock file beside them, re-reads the files, and writes them back atomically.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxslack.errors import ConfigError

SCHEMA_VERSION = 1
CONFIG_FILE = "config.toml"
CREDENTIALS_FILE = "credentials.toml"
LOCK_FILE = ".cxslack.lock"


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    state_dir: Path

    @classmethod
    def from_env(cls) -> Paths:
        home = os.environ.get("CXSLACK_HOME")
        if home:
            root = Path(home).expanduser().absolute()
            return cls(config_dir=root, state_dir=root / "state")
        import platformdirs  # only when no override: keeps `CXSLACK_HOME` runs lean

        return cls(
            config_dir=Path(platformdirs.user_config_dir("cxslack", appauthor=False)),
            state_dir=Path(platformdirs.user_state_dir("cxslack", appauthor=False)),
        )

    @property
    def config_file(self) -> Path:
        return self.config_dir / CONFIG_FILE

    @property
    def credentials_file(self) -> Path:
        return self.config_dir / CREDENTIALS_FILE

    @property
    def lock_file(self) -> Path:
        return self.config_dir / LOCK_FILE


def ensure_private_dir(path: Path) -> None:
    """Create `path` as 0700, and any missing parents too; tighten `path` if it is wider.

    (Path.mkdir(parents=True) would create the parents with the umask's mode.)
    """
    if not path.is_dir():
        if not path.parent.is_dir():
            ensure_private_dir(path.parent)
        with suppress(FileExistsError):
            path.mkdir(mode=0o700)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        os.chmod(path, mode & 0o700)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write via a temp file in the same directory: flush, fsync, rename, fsync the directory.

    mkstemp creates the temp file 0600, so a secrets file is never readable by others, not even
    for an instant; the rename makes the new content appear whole or not at all.
    """
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode != 0o600:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _ProcessLock:
    """An exclusive flock on a lock file, re-entrant within this process (threads included).

    flock locks belong to an open file description, so a second open of the same file in this
    process would deadlock against the first; the depth counter avoids that.
    """

    def __init__(self) -> None:
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def hold(self, lock_path: Path) -> Iterator[None]:
        with self._rlock:
            if self._depth == 0:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None


_LOCK = _ProcessLock()


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; any problem becomes a ConfigError naming the path and line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError("config_unreadable", f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "config_unreadable",
            f"{path}, line {_line_of(raw, exc.start)}: not valid UTF-8",
            "Fix or restore the file; cxslack left it as it is.",
        ) from None
    import tomllib  # only on a parse-cache miss

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", reason)
        where = f", line {match.group(1)}" if match else ""
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", reason) or "invalid TOML"
        if match is None and "end of document" in reason:
            where = f", line {text.count(chr(10)) + 1}"
        raise ConfigError(
            "config_unreadable",
            f"{path}{where}: {reason}",
            "Fix or restore the file; cxslack left it as it is.",
        ) from None


def dump_toml(doc: dict[str, Any]) -> bytes:
    import tomli_w

    return tomli_w.dumps(_drop_none(doc)).encode("utf-8")


def _drop_none(value: Any) -> Any:
    """TOML has no null: omit None values (readers treat a missing key as None)."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def locate_key(path: Path, table: str, key: str | None = None) -> str:
    """Best-effort ', line N' for `[table]` (and `key = …` within it) in a TOML file."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    header = re.compile(
        r"^\s*\[\s*" + r"\s*\.\s*".join(re.escape(p) for p in _split_dotted(table)) + r"\s*\]"
    )
    for i, line in enumerate(lines):
        if header.match(line):
            if key is None:
                return f", line {i + 1}"
            for j in range(i + 1, len(lines)):
                if lines[j].lstrip().startswith("["):
                    break
                if re.match(r"^\s*" + re.escape(key) + r"\s*=", lines[j]):
                    return f", line {j + 1}"
            return f", line {i + 1}"
    return ""


def _split_dotted(table: str) -> list[str]:
    parts = table.split(".", 1)
    return parts if len(parts) == 2 else [table]


@dataclass
class Documents:
    """The two files' contents, as plain TOML dicts."""

    config: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, Any] = field(default_factory=dict)


class Store:
    """Reads and transactionally updates config.toml and credentials.toml."""

    def __init__(self, paths: Paths | None = None):
        self.paths = paths or Paths.from_env()
        self._cache = ParseCache(self.paths.state_dir / "cache" / "config.json")

    # -- reading ---------------------------------------------------------------------------
    def read_config(self) -> dict[str, Any]:
        """config.toml as a dict; served from the parse cache while the file is unchanged."""
        path = self.paths.config_file
        try:
            key = _file_key(path)
        except FileNotFoundError:
            return {}
        cached = self._cache.load(key)
        if cached is not None:
            return cached
        doc = read_toml(path)
        self._check_schema(doc)
        self._cache.save(key, doc)
        return doc

    def read_credentials(self) -> dict[str, Any]:
        return read_toml(self.paths.credentials_file)

    def _check_schema(self, doc: dict[str, Any]) -> None:
        if not doc:
            return
        version = doc.get("schema_version", SCHEMA_VERSION)
        path = self.paths.config_file
        if not isinstance(version, int) or isinstance(version, bool):
            raise ConfigError(
                "config_invalid",
                f"{path}{locate_key(path, '', 'schema_version')}: schema_version must be an integer",
                "Fix or restore the file; cxslack left it as it is.",
            )
        if version > SCHEMA_VERSION:
            raise ConfigError(
                "config_newer_schema",
                f"{path} uses schema_version {version}, newer than this cxslack understands ({SCHEMA_VERSION})",
                "Upgrade cxslack (pip install -U cxslack); the file was left as it is.",
            )

    # -- writing ---------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Documents]:
        """Lock, read both files fresh, yield them, write back whichever changed."""
        ensure_private_dir(self.paths.config_dir)
        with _LOCK.hold(self.paths.lock_file):
            config = self.read_config()
            credentials = self.read_credentials()
            docs = Documents(config=_deep_copy(config), credentials=_deep_copy(credentials))
            yield docs
            if docs.config != config:
                docs.config["schema_version"] = SCHEMA_VERSION
                atomic_write(self.paths.config_file, dump_toml(_schema_first(docs.config)))
                self._cache.save(_file_key(self.paths.config_file), docs.config)
            if docs.credentials != credentials:
                atomic_write(self.paths.credentials_file, dump_toml(docs.credentials), mode=0o600)

    def ensure_state_dir(self) -> Path:
        ensure_private_dir(self.paths.state_dir)
        return self.paths.state_dir


def _file_key(path: Path) -> list[int]:
    """Identity of a file's current content: atomic replaces change the inode, edits the times."""
    st = os.stat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class ParseCache:
    """The parsed config as JSON in the state dir, valid only for the exact file it came from.

    tomllib is pure Python: a config with thousands of connectors takes ~200 ms to parse, while
    the same document as JSON loads in a few. The cache is an optimisation only: any problem
    reading or writing it falls back to parsing config.toml (which stays the source of truth).
    """

    def __init__(self, path: Path):
        self.path = path

    def load(self, key: list[int]) -> dict[str, Any] | None:
        import json

        try:
            cached = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        if (
            not isinstance(cached, dict)
            or cached.get("key") != key
            or not isinstance(cached.get("doc"), dict)
        ):
            return None
        return cached["doc"]

    def save(self, key: list[int], doc: dict[str, Any]) -> None:
        import json

        try:
            data = json.dumps({"key": key, "doc": doc}, separators=(",", ":")).encode()
            ensure_private_dir(self.path.parent)
            atomic_write(self.path, data)
        except (OSError, TypeError, ValueError):
            pass  # e.g. a hand-written TOML datetime JSON cannot hold, or a read-only state dir


def _schema_first(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": doc["schema_version"],
        **{k: v for k, v in doc.items() if k != "schema_version"},
    }


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
