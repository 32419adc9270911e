"""``SSL_CTX_set_num_tickets``, which no Python binding installed here exposes.

Why: with ``SSLSessionTickets off`` and no ``SSLSessionCache``, mod_ssl sends no TLS 1.3
NewSessionTicket message, while OpenSSL's default is two per full handshake: two more encrypted
records and writes per connection, for tickets the server could never resume (OP_NO_TICKET
under TLS 1.3 only turns them into stateful tickets, and with the session cache off there is no
state).  Only ``SSL_CTX_set_num_tickets(ctx, 0)`` stops them, and neither pyOpenSSL nor
cryptography's cffi module (``OpenSSL._util.lib``) binds it, nor ``SSL_CTX_ctrl``.

How: cryptography's wheel links OpenSSL statically into ``_rust.abi3.so`` and keeps the
library's full symbol table (``.symtab``) although only ``PyInit__rust`` is exported.  So:

    symtab value of SSL_CTX_set_num_tickets / _get_num_tickets, and of PyInit__rust
    base = address of the loaded PyInit__rust (dlsym) - its symtab value
    function = base + symtab value

and before calling anything the first 32 bytes at each computed address are compared with the
same bytes of the file (the code as the linker wrote it): a different build, a stripped wheel or
a mapping we misread gives ``available() == False`` and nothing is called.  Then ``set`` checks
its own work with ``SSL_CTX_get_num_tickets``.

Log id (module "ssl"): HP14001 (debug) the function was not found: tickets stay at OpenSSL's
default.
"""
from __future__ import annotations

import ctypes
import mmap
import struct
from functools import lru_cache

_SET, _GET, _ANCHOR = b"SSL_CTX_set_num_tickets", b"SSL_CTX_get_num_tickets", b"PyInit__rust"
_CHECK_BYTES = 32
_SHT_SYMTAB = 2
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")


def _library_path() -> str:
    from cryptography.hazmat.bindings import _rust
    return _rust.__file__


def elf_symbols(path: str, names: tuple[bytes, ...]) -> dict[bytes, tuple[int, int]]:
    """{name: (st_value, file offset of that address)} for the names found in the ELF64
    little-endian file's .symtab (function symbols in a section with a file image)."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if m[:4] != b"\x7fELF" or m[4] != 2 or m[5] != 1:     # ELF, 64-bit, little-endian
            return {}
        shoff = struct.unpack_from("<Q", m, 0x28)[0]
        shentsize, shnum = struct.unpack_from("<HH", m, 0x3A)
        sections = [_SHDR.unpack_from(m, shoff + i * shentsize) for i in range(shnum)]
        found: dict[bytes, tuple[int, int]] = {}
        for sh in sections:
            if sh[1] != _SHT_SYMTAB:
                continue
            strtab = sections[sh[6]]
            str_off, str_size = strtab[4], strtab[5]
            # the string-table offsets of the wanted names (each a NUL-terminated entry)
            wanted: dict[int, bytes] = {}
            for name in names:
                i = m.find(b"\0" + name + b"\0", str_off, str_off + str_size)
                if i >= 0:
                    wanted[i + 1 - str_off] = name
            if not wanted:
                continue
            off, end = sh[4], sh[4] + sh[5]
            for st_name, _info, _other, shndx, value, _size in _SYM.iter_unpack(m[off:end]):
                name = wanted.get(st_name)
                if name is None or not value or shndx == 0 or shndx >= len(sections):
                    continue
                sec = sections[shndx]
                addr, sec_off = sec[3], sec[4]
                found[name] = (value, value - addr + sec_off)
        return found


class _Functions:
    def __init__(self, setter, getter):
        self.set, self.get = setter, getter


@lru_cache(maxsize=1)
def _functions() -> _Functions | None:
    try:
        path = _library_path()
        syms = elf_symbols(path, (_SET, _GET, _ANCHOR))
        if not all(n in syms for n in (_SET, _GET, _ANCHOR)):
            return None
        lib = ctypes.CDLL(path)                      # already loaded: the same mapping
        anchor = ctypes.cast(lib.PyInit__rust, ctypes.c_void_p).value
        base = anchor - syms[_ANCHOR][0]
        with open(path, "rb") as f:
            for name in (_SET, _GET, _ANCHOR):
                value, offset = syms[name]
                f.seek(offset)
                if ctypes.string_at(base + value, _CHECK_BYTES) != f.read(_CHECK_BYTES):
                    return None
        setter = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)(base + syms[_SET][0])
        getter = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p)(base + syms[_GET][0])
        return _Functions(setter, getter)
    except Exception:                               # noqa: BLE001 - anything: not available
        return None


_missed = [False]


def first_miss() -> bool:
    """True the first time it is called (so the caller logs the missing function once)."""
    seen, _missed[0] = _missed[0], True
    return not seen


def available() -> bool:
    """Whether ``set_num_tickets`` can work with this installation."""
    return _functions() is not None


def _ctx_pointer(ctx) -> int:
    from OpenSSL._util import ffi
    return int(ffi.cast("uintptr_t", ctx._context))


def get_num_tickets(ctx) -> int | None:
    """The Context's TLS 1.3 ticket count (None: the function is not available)."""
    fn = _functions()
    return None if fn is None else int(fn.get(_ctx_pointer(ctx)))


def set_num_tickets(ctx, n: int) -> bool:
    """``SSL_CTX_set_num_tickets(ctx, n)`` on a pyOpenSSL Context; True when it took effect."""
    fn = _functions()
    if fn is None:
        return False
    p = _ctx_pointer(ctx)
    return fn.set(p, n) == 1 and int(fn.get(p)) == n
