"""Encryption at rest for stored chat text: a key per group, wrapped by one master key.

Every stored message text and author name is sealed with AES-256-GCM (``cryptography``'s AEAD)
under its group's data key, with the chat, message and field as associated data, so a sealed
value cannot be moved to another row. Group keys are stored wrapped (AES-GCM again) by the
master key, which lives outside the database: the ``STORAGE_KEY`` setting, or else a key file
under ``DATA_DIR`` created with mode 0600 on first run.

Deleting a group's key (``/digest_off``, removal from the group) makes every copy of its
messages unreadable at once — in the database's free pages, the write-ahead log, backups —
without finding those copies ("crypto-shredding").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE_NAME = "storage.key"
_CHECK_PLAINTEXT = b"condensa storage key check v1"


class StorageKeyError(Exception):
    """The master key is missing, malformed, or not the one the database was sealed with."""


class SealedDataError(Exception):
    """A sealed value failed authentication (tampered, or sealed under another key)."""


def encode_key(key: bytes) -> str:
    """A key as the URL-safe base64 text ``STORAGE_KEY`` takes."""
    return base64.urlsafe_b64encode(key).decode("ascii")


def decode_key(text: str) -> bytes:
    """The 32 bytes of a ``STORAGE_KEY`` (URL-safe base64); ``StorageKeyError`` otherwise."""
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise StorageKeyError("STORAGE_KEY is not URL-safe base64") from exc
    if len(key) != KEY_BYTES:
        raise StorageKeyError(f"STORAGE_KEY must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(KEY_BYTES)


def _seal(aead: AESGCM, plaintext: bytes, associated: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, associated)


def _open(aead: AESGCM, sealed: bytes, associated: bytes) -> bytes:
    try:
        return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
    except InvalidTag as exc:
        raise SealedDataError("authentication failed") from exc


class MasterKey:
    """The key that wraps group keys; never stored in the database.

    Args:
        key: 32 random bytes.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise StorageKeyError(f"a master key has {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self._derivation = hmac.new(key, b"condensa derivation", hashlib.sha256).digest()
        self.fingerprint = hmac.new(key, b"condensa fingerprint", hashlib.sha256).hexdigest()[:16]

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte key for ``purpose`` (e.g. the update queue), derived from this one."""
        return hmac.new(self._derivation, purpose, hashlib.sha256).digest()

    def wrap(self, group_key: bytes, chat_id: int) -> bytes:
        """``group_key`` sealed for storage beside ``chat_id``."""
        return _seal(self._aead, group_key, b"group-key:%d" % chat_id)

    def unwrap(self, wrapped: bytes, chat_id: int) -> bytes:
        """The group key of ``chat_id``; ``SealedDataError`` under the wrong master key."""
        return _open(self._aead, wrapped, b"group-key:%d" % chat_id)

    def check_value(self) -> bytes:
        """A value stored once so a later start can tell whether its key is the right one."""
        return _seal(self._aead, _CHECK_PLAINTEXT, b"key-check")

    def matches(self, check: bytes) -> bool:
        """Whether ``check`` (from :meth:`check_value`) was made with this key."""
        try:
            return _open(self._aead, check, b"key-check") == _CHECK_PLAINTEXT
        except SealedDataError:
            return False


class GroupCipher:
    """Seals and opens the text fields of one group's stored messages.

    Args:
        key: the group's 32-byte data key.
        chat_id: the group; part of every value's associated data.
    """

    def __init__(self, key: bytes, chat_id: int) -> None:
        self._aead = AESGCM(key)
        self._chat_id = chat_id

    def _associated(self, message_id: int, field: str) -> bytes:
        return b"%d:%d:%s" % (self._chat_id, message_id, field.encode("ascii"))

    def seal(self, message_id: int, field: str, value: str) -> bytes:
        """``value`` of ``field`` ("text", "author") of a message, sealed."""
        return _seal(self._aead, value.encode("utf-8"), self._associated(message_id, field))

    def open(self, message_id: int, field: str, sealed: bytes) -> str:
        """The value :meth:`seal` sealed; ``SealedDataError`` if it was altered or moved."""
        return _open(self._aead, sealed, self._associated(message_id, field)).decode("utf-8")


def load_master_key(data_dir: Path, configured: str | None, has_sealed_data: bool) -> MasterKey:
    """The master key: ``STORAGE_KEY`` when set, else ``DATA_DIR/storage.key``.

    The key file is created (0600, exclusively) only while the database holds no sealed data;
    a missing file with sealed data present is an error rather than a silent new key, which
    would leave everything stored unreadable.

    Raises:
        StorageKeyError: a malformed ``STORAGE_KEY``, or a key file that is missing or damaged.
    """
    if configured:
        return MasterKey(decode_key(configured))
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        return MasterKey(decode_key(path.read_text(encoding="ascii")))
    if has_sealed_data:
        raise StorageKeyError(
            f"{path} is missing and the database holds encrypted messages: restore the key file "
            "or set STORAGE_KEY"
        )
    key = new_key()
    write_key_file(path, key)
    return MasterKey(key)


def write_key_file(path: Path, key: bytes) -> None:
    """Write ``key`` to ``path`` readable by the owner only (created exclusively)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(encode_key(key) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
