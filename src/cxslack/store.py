"""The local config store: where files live, and transactions over config.toml and credentials.toml.

config.toml holds no secrets; credentials.toml holds every secret and is 0600 from the moment
it exists. Every read-modify-write happens inside `Store.transaction()`, which holds an
exclusive lock on a lock file beside them, re-reads the files, and writes them back atomically,
through the same primitives as the rest of cxslack's state (`cxslack.state.files`, `.lock`).
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxslack.errors import ConfigError
from cxslack.state.lock import ReentrantLock

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


# Nested transactions in one thread (an edit that refreshes a token, say) take it again.
_LOCK = ReentrantLock()


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; any problem becomes a ConfigError naming the path and line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.EACCES, errno.EPERM):
            from cxslack.state.files import storage_error

            raise storage_error(exc, path, "read") from None
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
        except OSError as exc:  # CXSLACK_HOME is a file, say
            from cxslack.state.files import storage_error

            raise storage_error(exc, path, "read") from None
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
        """Lock, read both files fresh, yield them, write back whichever changed.

        Holding the lock, it also removes temp files a killed writer left beside them."""
        # The file primitives load only for writes: reading the config stays lean at start-up.
        from cxslack.state.files import atomic_write, sweep_temps

        with _LOCK.hold(self.paths.lock_file):
            # Only writers holding this lock write these files: temp files beside them are a
            # killed writer's (a credentials one would hold secrets). Nobody reads them.
            for path in (self.paths.config_file, self.paths.credentials_file, self._cache.path):
                sweep_temps(path)
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
        from cxslack.state.files import ensure_private_dir

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

        from cxslack.state.files import atomic_write, ensure_private_dir

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
