"""Keep secrets out of what esmigrate stores or prints (the history index, logs, plans)."""

from __future__ import annotations

from typing import Any

#: Key fragments that mark a secret value (``api_key``, ``client_secret``, ``password``, ...).
_SECRET_PARTS = ("password", "passwd", "secret", "token", "api_key", "apikey", "authorization",
                 "private_key", "credential")  # fmt: skip
#: Whole keys that hold a secret without saying so (the create-API-key response).
_SECRET_KEYS = {"encoded"}
MASK = "********"


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SECRET_KEYS or any(part in lowered for part in _SECRET_PARTS)


def redact(value: Any) -> Any:
    """A copy of ``value`` with the values of secret-looking keys masked, at any depth."""
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and is_secret_key(k) and v is not None else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
