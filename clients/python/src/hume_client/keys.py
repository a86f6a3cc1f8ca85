"""CURVE keys (PROTOCOL.md section 1, "Security").

A broker started with ``--curve-key KEY --allow-keys LIST`` lets in only the listed public keys, and answers nothing at
all to anyone else. A client needs its own pair (``hume keys generate NAME`` writes ``NAME.key`` with lines
``public Z85`` and ``secret Z85``, and ``NAME.pub``) and the broker's public key (Z85 text or its ``.pub`` file)::

    keys = CurveKeys.from_files("keys/laptop.key", "keys/broker.pub")
    with Client("tcp://host:5556", curve=keys) as c: ...

or from the environment, as Hume's own tools read it (``HUME_CURVE_KEY`` = the ``.key`` file, ``HUME_SERVER_KEY`` =
the broker's key or ``.pub`` file): ``CurveKeys.from_env()``, which is also what ``Client`` does by default.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, NamedTuple, Optional

from .errors import BadInput

__all__ = ["CurveKeys"]

_Z85 = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")


def _check_z85(key: str, what: str) -> bytes:
    if len(key) != 40 or not set(key) <= _Z85:
        raise BadInput("The %s is not a CURVE key: a key is 40 characters of Z85 text, got %r." % (what, key[:48]))
    return key.encode("ascii")


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise BadInput("Cannot read the %s %s: %s." % (what, path, e.strerror or e)) from None


class CurveKeys(NamedTuple):
    """This client's key pair and the broker's public key, each 40 characters of Z85 as bytes (what pyzmq's
    ``curve_*`` socket options take)."""

    public_key: bytes
    secret_key: bytes
    server_key: bytes

    @classmethod
    def from_files(cls, key_file: str, server_key: str) -> "CurveKeys":
        """Reads a ``hume keys generate`` pair file and the broker's public key, given as Z85 text or as the path of
        its ``.pub`` file."""
        pair = {}
        for line in _read(key_file, "CURVE key file").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("public", "secret"):
                pair[parts[0]] = parts[1]
        if "public" not in pair or "secret" not in pair:
            raise BadInput("The CURVE key file %s has no \"public\" and \"secret\" lines; make one with `hume keys "
                           "generate NAME`." % key_file)
        return cls(_check_z85(pair["public"], "public key in %s" % key_file),
                   _check_z85(pair["secret"], "secret key in %s" % key_file),
                   cls._server(server_key))

    @staticmethod
    def _server(server_key: str) -> bytes:
        text = server_key.strip()
        if len(text) == 40 and set(text) <= _Z85 and not os.path.exists(server_key):
            return text.encode("ascii")
        content = _read(server_key, "broker's public key file").split()
        if not content:
            raise BadInput("The broker's public key file %s is empty." % server_key)
        return _check_z85(content[0], "broker's public key in %s" % server_key)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> Optional["CurveKeys"]:
        """Keys from ``HUME_CURVE_KEY`` (the ``.key`` file) and ``HUME_SERVER_KEY`` (the broker's Z85 key or ``.pub``
        file); None when either is unset or empty."""
        e = os.environ if env is None else env
        key_file, server = e.get("HUME_CURVE_KEY"), e.get("HUME_SERVER_KEY")
        if not key_file or not server:
            return None
        return cls.from_files(key_file, server)

    def apply(self, socket: Any) -> None:
        """Sets a pyzmq socket's CURVE options (before it connects)."""
        socket.curve_serverkey = self.server_key
        socket.curve_publickey = self.public_key
        socket.curve_secretkey = self.secret_key

    def __repr__(self) -> str:  # never print the secret
        return "CurveKeys(public_key=%r, server_key=%r)" % (self.public_key.decode(), self.server_key.decode())
