"""Personal data encrypted at rest (数据保密): the callers' names and phones, the numbers text
messages go to.

Each value is sealed with AES-256-GCM (the `cryptography` package) under a key derived from
the installation's secret, and stored as text: `e1.<key id>.<base64url of nonce and sealed
bytes>`. `e1` names the format (the algorithm and the derivation), the key id the secret, so
that a secret can be rotated (`hotline keys rotate`) and the algorithm changed while old
values stay readable. The column's name is bound to the ciphertext (associated data): a value
copied into another column does not open.

Equality lookups go to keyed hashes beside the ciphertext (HMAC-SHA256 under a key derived
from the same secret for that purpose alone, truncated to 128 bits): of the normalised phone,
of its last four digits (the search by a phone's last digits) and of the name.

The secrets come from HOTLINE_SECRET_KEY (one, or several separated by commas: the first
seals, the others still open what they sealed) or from the key file HOTLINE_KEY_FILE (one
secret a line, the first sealing); with neither, on SQLite, from `hotline.key` beside the
database, made (0600) on first use. Never from the database. PostgreSQL, whose servers may
be several, must be told.
"""

import base64
import binascii
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import JSON, Integer, String, Text, bindparam, cast, column, func, or_, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator

from hotline.config import Settings, get_settings

FORMAT = "e1"
PREFIX = FORMAT + "."
NONCE_BYTES = 12
# A secret shorter than this is refused: HOTLINE_SECRET_KEY may be any text, but not a password.
MIN_SECRET_CHARS = 32
KEY_FILE_NAME = "hotline.key"
# How often a process looks whether its key file changed (a rotation adds a key to it).
RELOAD_SECONDS = 5.0
# Tickets before the newest at a rotation's start whose callers it hashes again too.
_REHASH_MARGIN = 1000
# Digits of the phone's end that the tail hash keeps (the search by a phone's last digits).
TAIL_DIGITS = 4
# Hex digits kept of each keyed hash: 128 bits.
HASH_CHARS = 32


class SecretKeyError(RuntimeError):
    """No usable secret, or a value that no known secret opens: the message says which."""


def new_secret() -> str:
    """A fresh secret: 256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def normal_phone(phone: str) -> str:
    """The phone as it is hashed: its digits, and a leading +."""
    phone = phone.strip()
    return ("+" if phone.startswith("+") else "") + re.sub(r"\D", "", phone)


class Key:
    """One secret's derived keys: sealing, hashing, and its id."""

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise SecretKeyError(
                f"a secret key must have at least {MIN_SECRET_CHARS} characters (`hotline keys new` makes one)"
            )
        material = secret.encode()
        self.sealer = AESGCM(_derive(material, b"hotline seal v1"))
        self.hash_key = _derive(material, b"hotline lookup hash v1")
        # The keyed hash's state after the key: copied for each digest, three times faster
        # than hmac.digest setting the key up every time (a bulk load hashes millions).
        self._hasher = hmac.new(self.hash_key, digestmod="sha256")
        self.id = _derive(material, b"hotline key id v1").hex()[:8]

    def seal(self, value: str, purpose: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.sealer.encrypt(nonce, value.encode(), purpose)
        return f"{PREFIX}{self.id}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def digest(self, text: str) -> str:
        hasher = self._hasher.copy()
        hasher.update(text.encode())
        return hasher.hexdigest()[:HASH_CHARS]

    def caller_hashes(self, phone: str | None, name: str | None) -> dict[str, str | None]:
        """The lookup columns of a caller under this key (Keyring.phone_hashes and the others
        find them)."""
        digits = normal_phone(phone) if phone else ""
        return {
            "caller_phone_hash": self.digest("phone:" + digits) if digits else None,
            "caller_tail_hash": self.digest("tail:" + digits[-TAIL_DIGITS:]) if digits else None,
            "caller_name_hash": self.digest("name:" + name.strip()) if name and name.strip() else None,
        }


def _derive(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


class Keyring:
    """The secrets of one database: the first seals and hashes; all open, and all hash for a
    lookup (rows not yet rotated carry the older key's hashes)."""

    def __init__(self, secrets_: list[str], *, source: Path | None = None) -> None:
        if not secrets_:
            raise SecretKeyError("no secret key given")
        self.keys = [Key(s) for s in secrets_]
        self.by_id = {k.id: k for k in self.keys}
        self.source = source
        self._stamp = _stamp(source)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    @property
    def active(self) -> Key:
        self._refresh()
        return self.keys[0]

    def seal(self, value: str | None, purpose: bytes) -> str | None:
        return None if value is None else self.active.seal(value, purpose)

    def open(self, value: str | None, purpose: bytes) -> str | None:
        if value is None:
            return None
        key = self._key_of(value)
        raw = value[len(PREFIX) + len(key.id) + 1 :]
        try:
            data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            return key.sealer.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], purpose).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            what = purpose.decode()
            raise SecretKeyError(f"a sealed {what} does not open: altered, or moved from another column") from exc

    def key_id(self, value: str) -> str | None:
        """The id of the key a stored value was sealed with (None: not sealed)."""
        if not value.startswith(PREFIX):
            return None
        return value[len(PREFIX) :].split(".", 1)[0]

    def _key_of(self, value: str) -> Key:
        kid = self.key_id(value)
        if kid is None:
            raise SecretKeyError("a personal-data column holds a value in clear (run `hotline db upgrade`)")
        key = self.by_id.get(kid)
        if key is None:
            self._refresh(force=True)
            key = self.by_id.get(kid)
        if key is None:
            raise SecretKeyError(f"no configured secret key has the id {kid}: the key that sealed a value is missing")
        return key

    def digests(self, text: str) -> list[str]:
        """The keyed hash of the text under every key, the active one first."""
        self._refresh()
        return [k.digest(text) for k in self.keys]

    def phone_hashes(self, phone: str) -> list[str]:
        return self.digests("phone:" + normal_phone(phone))

    def tail_hashes(self, digits: str) -> list[str]:
        return self.digests("tail:" + normal_phone(digits)[-TAIL_DIGITS:])

    def name_hashes(self, name: str) -> list[str]:
        return self.digests("name:" + name.strip())

    def caller_hashes(self, phone: str | None, name: str | None) -> dict[str, str | None]:
        """The lookup columns of a caller, under the active key."""
        return self.active.caller_hashes(phone, name)

    def reload(self) -> None:
        """Read the key file again now, if it changed."""
        self._refresh(force=True)

    def _refresh(self, *, force: bool = False) -> None:
        """Read the key file again when it changed: every process of the installation learns
        of a rotation within RELOAD_SECONDS, and of a key it meets on a row at once."""
        if self.source is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_SECONDS:
            return
        with self._lock:
            self._checked = now
            stamp = _stamp(self.source)
            if stamp == self._stamp:
                return
            keys = [Key(s) for s in read_key_file(self.source)]
            self.keys, self.by_id, self._stamp = keys, {k.id: k for k in keys}, stamp


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    info = path.stat()
    return (info.st_mtime_ns, info.st_size)


def read_key_file(path: Path) -> list[str]:
    """The secrets of a key file: one a line, the sealing one first; blank lines and # comments
    skipped."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SecretKeyError(f"cannot read the key file {path}: {exc.strerror}") from exc
    found = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not found:
        raise SecretKeyError(f"the key file {path} holds no key")
    return found


def write_key_file(path: Path, keys: Iterable[str]) -> None:
    """Write the key file whole (0600, synced, then renamed over the old one)."""
    body = "# hotline's secret keys: the first seals, the others still open. Keep a copy apart from the backups.\n"
    body += "".join(f"{k}\n" for k in keys)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def key_file_of(settings: Settings, url: str) -> Path | None:
    """The key file the settings name, or the default one beside a SQLite database; None when
    the secrets come from HOTLINE_SECRET_KEY."""
    if settings.secret_key:
        return None
    if settings.key_file:
        return Path(settings.key_file)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database).resolve().parent / KEY_FILE_NAME
    return None


def load(url: str, settings: Settings | None = None) -> Keyring:
    """The keyring of the database at `url`, as the settings say where its secrets are."""
    settings = settings or get_settings()
    if settings.secret_key:
        return Keyring([s.strip() for s in settings.secret_key.split(",") if s.strip()])
    path = key_file_of(settings, url)
    if path is None:
        if make_url(url).get_backend_name() == "sqlite":
            # An in-memory database lives and dies with its process: so does its key.
            return Keyring([new_secret()])
        raise SecretKeyError(
            "HOTLINE_SECRET_KEY or HOTLINE_KEY_FILE must be set on PostgreSQL "
            "(every server process must share the key; `hotline keys new` makes one)"
        )
    if not settings.key_file:
        _make_key_file(path)
    return Keyring(read_key_file(path), source=path)


def _make_key_file(path: Path) -> None:
    """Create the default key file with a fresh secret unless it exists (several processes
    may start at once: the first one's file stands)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    write_key_file(tmp, [new_secret()])
    try:
        os.link(tmp, path)  # fails if another process made it meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def keyring_of(bind: Any) -> Keyring:
    """The keyring attached to an engine's, a connection's or a session's dialect (see attach)."""
    if hasattr(bind, "get_bind"):
        bind = bind.get_bind()
    return _ring(bind.dialect)


def _ring(dialect: Any) -> Keyring:
    ring = getattr(dialect, "hotline_keys", None)
    if ring is None:
        raise SecretKeyError("this engine has no keys: open the database through hotline.db.Database")
    return ring


def attach(engine: Any, ring: Keyring) -> None:
    """Give the engine's dialect the keyring: the Sealed columns find it there (a dialect
    belongs to one engine)."""
    engine.dialect.hotline_keys = ring


class Sealed(TypeDecorator[str]):
    """A text column stored sealed: plain text in Python, `e1.…` in the database.

    Only `IS NULL` / `IS NOT NULL` compare it in SQL: an equality or LIKE on a sealed value
    would never match, so they raise; look up through the keyed hash column instead."""

    # Unbounded: the sealed text is longer than the value (VARCHAR without a length on
    # PostgreSQL; SQLite bounds no text).
    impl = String
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose.encode()

    class comparator_factory(String.Comparator):  # noqa: N801 (SQLAlchemy's name)
        def operate(self, op, *other, **kwargs):
            if op.__name__ not in ("is_", "is_not", "isnot", "asc_op", "desc_op"):
                raise TypeError(f"a sealed column cannot be compared in SQL ({op.__name__}): use its keyed hash")
            return super().operate(op, *other, **kwargs)

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        return None if value is None else _ring(dialect).seal(value, self.purpose)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        return None if value is None else _ring(dialect).open(value, self.purpose)


# A sealed JSON value's text: compact, not ASCII-escaped. One encoder for every value
# (`json.dumps` with options builds a new one on each call; an event's payload is sealed on
# every ticket change).
_SEALED_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class SealedJSON(TypeDecorator[Any]):
    """A JSON column stored sealed: the value's JSON text sealed, kept as a JSON string (the
    column stays JSON, so nothing else about it changes). For payloads that carry a caller
    (the outbox's events): never compared in SQL."""

    impl = JSON
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose.encode()

    def process_bind_param(self, value: Any, dialect) -> str | None:
        if value is None:
            return None
        return _ring(dialect).seal(_SEALED_JSON.encode(value), self.purpose)

    def process_result_value(self, value: Any, dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise SecretKeyError(f"{self.purpose.decode()} holds a value in clear (run `hotline db upgrade`)")
        return json.loads(_ring(dialect).open(value, self.purpose))


# The sealed columns of each table (JSON: a SealedJSON column), and the table that carries
# the caller's hashes.
SEALED_COLUMNS = {
    "tickets": ("caller_name", "caller_phone"),
    "messages": ("to",),
    "outbox": ("payload",),
    "calls": ("caller_phone",),
}
JSON_COLUMNS = {("outbox", "payload")}
HASHED_TABLES = {"tickets"}
# The caller's keyed hashes, as caller_hashes names them.
CALLER_HASHES = ("caller_phone_hash", "caller_tail_hash", "caller_name_hash")


def _table(name: str) -> Any:
    """The table's id and sealed columns as SQLAlchemy Core sees them (not the models: the
    migration 0013 uses this too, and must not change when they do)."""
    columns = [column(c, JSON if (name, c) in JSON_COLUMNS else String) for c in SEALED_COLUMNS[name]]
    if name in HASHED_TABLES:
        columns += [column(c, String) for c in CALLER_HASHES]
    return table(name, column("id", Integer), *columns)


def reseal(
    connection: Any,
    ring: Keyring,
    *,
    batch: int = 1000,
    commit: bool = True,
    progress=None,
    tables: tuple[str, ...] | None = None,
) -> int:
    """Bring every sealed column to the active key, a batch of rows per transaction, in id
    order: values in clear are sealed (an upgrade from before 0013), values sealed with an
    older key opened and sealed again, and the caller's hashes made again with them. Rows
    already under the active key are left alone, so an interrupted run is simply run again;
    rows written meanwhile by a server are sealed with its active key. Returns how many rows
    it changed. `commit`: a transaction a batch (False: the caller's one, as in a migration).
    `tables`: these only (a migration names the tables that exist at its revision)."""
    changed = 0
    for name, columns in SEALED_COLUMNS.items():
        if tables is not None and name not in tables:
            continue
        t = _table(name)
        sealed = [t.c[c] for c in columns]
        last = 0
        while True:
            rows = connection.execute(
                select(t.c.id, *sealed)
                .where(t.c.id > last, or_(*[c.is_not(None) for c in sealed]))
                .order_by(t.c.id)
                .limit(batch)
            ).all()
            if not rows:
                break
            last = rows[-1][0]
            updates = [u for row in rows if (u := _resealed(ring, name, columns, row)) is not None]
            if updates:
                connection.execute(_update(t, name, columns), updates)
                changed += len(updates)
            if commit:
                connection.commit()
            if progress:
                progress(name, last, changed)
    return changed


def _resealed(
    ring: Keyring, name: str, columns: tuple[str, ...], row: Any, *, hash_again: bool = False
) -> dict[str, Any] | None:
    """The row's new values (as bind parameters: b_id, old_*, and the columns themselves
    under new_*), or None when it is sealed with the active key already; with `hash_again`,
    made all the same, the caller's hashes made again (rehash). A value the active key
    sealed is kept as it is."""
    active = ring.active.id
    values = dict(zip(columns, row[1:], strict=True))
    current = {c: v is None or (isinstance(v, str) and ring.key_id(v) == active) for c, v in values.items()}
    if all(current.values()) and not hash_again:
        return None
    plain = {}
    for c, v in values.items():
        if isinstance(v, str) and ring.key_id(v):
            plain[c] = ring.open(v, _purpose(name, c))
        elif (name, c) in JSON_COLUMNS and v is not None:
            plain[c] = _SEALED_JSON.encode(v)
        else:
            plain[c] = v
    update: dict[str, Any] = {"b_id": row[0], **{f"old_{c}": v for c, v in values.items()}}
    update.update({f"new_{c}": values[c] if current[c] else ring.seal(v, _purpose(name, c)) for c, v in plain.items()})
    if name in HASHED_TABLES:
        hashes = ring.caller_hashes(plain["caller_phone"], plain["caller_name"])
        update.update({f"new_{c}": v for c, v in hashes.items()})
    return update


def _update(t: Any, name: str, columns: tuple[str, ...]) -> Any:
    """The statement writing _resealed's values: only if the text values are still those read,
    so a server's change meanwhile stands (sealed with its key; rotate looks again). JSON has no
    equality on PostgreSQL, and an event's payload never changes."""
    same = [t.c[c].is_not_distinct_from(bindparam(f"old_{c}")) for c in columns if (name, c) not in JSON_COLUMNS]
    targets = (*columns, *(CALLER_HASHES if name in HASHED_TABLES else ()))
    return t.update().where(t.c.id == bindparam("b_id"), *same).values({c: bindparam(f"new_{c}") for c in targets})


def rehash(connection: Any, ring: Keyring, *, after_id: int = 0, batch: int = 1000) -> int:
    """Make the caller's hashes of the tickets with ids above `after_id` again under the active
    key, where they differ (and seal the caller again if an older key sealed it), a batch per
    transaction; returns how many it changed. A server that read a new key file in the middle
    of writing a ticket may have hashed its caller with the old key and sealed it with the new
    one: reseal, which looks at the seals, leaves such a row alone, and once the old key is
    retired its caller could not be found."""
    name, columns = "tickets", SEALED_COLUMNS["tickets"]
    t = _table(name)
    stmt = _update(t, name, columns)
    changed, last = 0, after_id
    while True:
        rows = connection.execute(
            select(t.c.id, *[t.c[c] for c in columns], *[t.c[c] for c in CALLER_HASHES])
            .where(t.c.id > last)
            .order_by(t.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return changed
        last = rows[-1][0]
        updates = []
        for row in rows:
            update = _resealed(ring, name, columns, row[: 1 + len(columns)], hash_again=True)
            if any(update[f"new_{c}"] != v for c, v in zip((*columns, *CALLER_HASHES), row[1:], strict=True)):
                updates.append(update)
        if updates:
            connection.execute(stmt, updates)
            changed += len(updates)
        connection.commit()


def _purpose(table_name: str, column_name: str) -> bytes:
    """The associated data a column's values are sealed with (as Sealed's purpose)."""
    return f"{table_name}.{column_name}".encode()


def count_by_key(connection: Any, ring: Keyring) -> dict[str, int]:
    """How many sealed values each key id seals ("clear": values not sealed), over every table."""
    counts: dict[str, int] = {}
    for name, columns in SEALED_COLUMNS.items():
        for c in columns:
            # A sealed JSON value is a JSON string: its text starts with a quote.
            skip = 1 if (name, c) in JSON_COLUMNS else 0
            head = func.substr(cast(column(c), Text), 1 + skip, len(PREFIX) + 8)
            rows = connection.execute(
                select(head, func.count()).select_from(table(name)).where(column(c).is_not(None)).group_by(head)
            ).all()
            for start, n in rows:
                kid = ring.key_id(start) or "clear"
                counts[kid] = counts.get(kid, 0) + n
    return counts


def rotate(connection: Any, ring: Keyring, *, wait: float, batch: int, say) -> None:
    """`hotline keys rotate`: a new secret seals from now on, every stored value is sealed
    with it again, and the old secret is retired.

    With a key file: a new secret goes first in it (the others stay, so every value still
    opens); after `wait` seconds every process of the installation has read it (they look
    every RELOAD_SECONDS); then every row is sealed again in batches (reseal); rows a
    process sealed meanwhile with the old key are caught by a last look; then the file keeps
    the new secret alone. A run stopped half-way is run again: a file that holds more than
    one secret is a rotation under way, and it goes on with the first.

    With HOTLINE_SECRET_KEY: the operator puts the new secret first (`new,old`) on every
    process; this seals every row with it, and says when the old one may go."""
    path = ring.source
    if path is None and len(ring.keys) < 2:
        raise SecretKeyError(
            "HOTLINE_SECRET_KEY holds one secret: put a new one first (`hotline keys new`), as `new,old`, "
            "on every process, then run this again"
        )
    # The tickets a server may write while it changes keys: those after the last one now (and
    # a margin, for ids taken by transactions not yet committed); all of them when a run stopped
    # half-way goes on (its own window is not known).
    after_id = 0
    if path is not None and len(ring.keys) == 1:
        newest = connection.execute(select(func.max(_table("tickets").c.id))).scalar() or 0
        connection.commit()
        after_id = max(0, newest - _REHASH_MARGIN)
        write_key_file(path, [new_secret(), *read_key_file(path)])
        ring.reload()
        say(f"key {ring.active.id} seals from now on; waiting {wait:g} s for every process to read it")
        time.sleep(wait)
    else:
        say(f"key {ring.active.id} seals; sealing again what the other keys sealed")
    while True:
        changed = reseal(connection, ring, batch=batch)
        say(f"{changed} rows sealed again with key {ring.active.id}")
        left = {k: n for k, n in count_by_key(connection, ring).items() if k != ring.active.id}
        if not left:
            break
        say(f"still under other keys: {left}; again")
    if path is None:
        say("every value is sealed with the first key of HOTLINE_SECRET_KEY: the others may now be removed")
        return
    # (With HOTLINE_SECRET_KEY every process had both keys from its start: no change of key
    # in the middle of a write.)
    rehashed = rehash(connection, ring, after_id=after_id, batch=batch)
    if rehashed:
        say(f"{rehashed} callers hashed again with key {ring.active.id} (written while a server changed keys)")
    write_key_file(path, read_key_file(path)[:1])
    ring.reload()
    say(f"the old keys are retired: {path} holds key {ring.active.id} alone")
