"""ctypes binding to Debian's libcapi20.so.3 (the CAPI 2.0 application interface).

This module owns every call into the C library: which symbols we use, their argument
and result types, the check of each returned CAPI Info value (an ``errcheck`` that
raises :class:`ccbs_isdn.errors.CapiError` naming the Info), copying library buffers at
once, and selecting the transport (driver/host/port or the library's ``.capi20rc``).
It does not interpret CAPI messages (``messages.py``) nor run an event loop
(``driver.py``). Facts: shared/docs/capi.md §1–§3.

The library is loaded lazily by :func:`load` — never at import time — because its
constructor creates a POSIX semaphore and a shared-memory segment in /dev/shm and calls
``exit()`` when it cannot (capi.md §1.1): /dev/shm is checked first, and a missing
library or an unusable /dev/shm is a :class:`ccbs_isdn.errors.DriverNotAvailable`.

libcapi20 keeps its transport and ApplID table per process (capi.md §2.4, §9.4):
``release`` of an ApplID also closes the shared control connection, so the next
``isinstalled`` re-reads the configuration — the only way to reconnect or switch server.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ccbs_isdn.errors import CapiError, ConfigError, DriverNotAvailable

from .tables import INFO_OS_RESOURCE, INFO_QUEUE_EMPTY, info_name

log = logging.getLogger(__name__)

LIBRARY_NAME: Final = "libcapi20.so.3"
SHM_DIR: Final = "/dev/shm"
#: libcapi20's SEND_BUFSIZ: put_message may write a DATA_B3 payload behind the message.
SEND_BUFSIZE: Final = 2176
#: libcapi20 receive buffers are max(2048, 128 + MaxBDataLen) octets (capi.md §1)
MIN_RECEIVE_SIZE: Final = 2048
PROFILE_SIZE: Final = 64
DRIVERS: Final = ("standard", "fritzbox", "rcapi")
DEFAULT_REMOTE_PORT: Final = 2662

_P_UBYTE = ctypes.POINTER(ctypes.c_ubyte)


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


@dataclass(frozen=True, slots=True)
class Profile:
    """The 64-octet controller profile (CAPI 2.0 Part I §8.1; capi.md §5.5)."""

    ncontrollers: int
    nbchannels: int
    global_options: int
    b1_support: int
    b2_support: int
    b3_support: int
    manufacturer_specific: bytes

    @classmethod
    def decode(cls, raw: bytes) -> Profile:
        nc, nb, gopt, b1, b2, b3 = struct.unpack_from("<HHIIII", raw)
        return cls(nc, nb, gopt, b1, b2, b3, bytes(raw[44:64]))


def _check_info(*allowed: int) -> Callable[[int, Any, tuple[Any, ...]], int]:
    """errcheck for functions returning a CAPI Info: anything not *allowed* raises."""

    def errcheck(result: int, func: Any, args: tuple[Any, ...]) -> int:
        if result not in allowed:
            raise CapiError(result, info_name(result), call=func.__name__)
        return result

    return errcheck


def _check_pointer(result: int | None, func: Any, args: tuple[Any, ...]) -> int:
    if not result:
        raise CapiError(INFO_OS_RESOURCE, "returned NULL (no such controller?)",
                        call=func.__name__)
    return result


def _check_fd(result: int, func: Any, args: tuple[Any, ...]) -> int:
    if result < 0:
        raise CapiError(0x1101, "no file descriptor for this ApplID", call=func.__name__)
    return result


#: Every symbol we use: name -> (argtypes, restype, errcheck). Data, walked once at load.
_UINT, _INT, _CHARP, _VOIDP = ctypes.c_uint, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p
_SYMBOLS: Final[dict[str, tuple[list[Any], Any, Any]]] = {
    "capi20_isinstalled": ([], _UINT, _check_info(0)),
    "capi20_register": ([_UINT, _UINT, _UINT, ctypes.POINTER(_UINT)], _UINT, _check_info(0)),
    "capi20_release": ([_UINT], _UINT, _check_info(0)),
    "capi20_put_message": ([_UINT, ctypes.c_char_p], _UINT, _check_info(0)),
    "capi20_get_message": ([_UINT, ctypes.POINTER(_P_UBYTE)], _UINT,
                           _check_info(0, INFO_QUEUE_EMPTY)),
    "capi20_waitformessage": ([_UINT, ctypes.POINTER(Timeval)], _UINT,
                              _check_info(0, INFO_QUEUE_EMPTY)),
    "capi20_fileno": ([_UINT], _INT, _check_fd),
    "capi20_get_profile": ([_UINT, _CHARP], _UINT, _check_info(0)),
    "capi20_get_manufacturer": ([_UINT, _CHARP], _VOIDP, _check_pointer),
    "capi20_get_version": ([_UINT, _CHARP], _VOIDP, _check_pointer),
    "capi20_get_serial_number": ([_UINT, _CHARP], _VOIDP, _check_pointer),
    "capi20ext_set_driver": ([_CHARP], None, None),
    "capi20ext_set_host": ([_CHARP], None, None),
    "capi20ext_set_port": ([_INT], None, None),
    "capi20ext_set_tracelevel": ([_INT], None, None),
    "capi20ext_get_driver": ([], _CHARP, None),
    "capi20ext_get_host": ([], _CHARP, None),
    "capi20ext_get_port": ([], _INT, None),
    "capi20ext_get_tracelevel": ([], _INT, None),
}


def check_shm(path: str = SHM_DIR) -> None:
    """Raise DriverNotAvailable unless *path* is a writable directory (capi.md §1.1)."""
    if not os.path.isdir(path):
        raise DriverNotAvailable(
            f"{path} does not exist: libcapi20 needs it for its shared ApplID table "
            "(mount a tmpfs there)"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise DriverNotAvailable(
            f"{path} is not writable for this user: libcapi20 would exit the process at "
            "load time (it creates its semaphore and shared memory there)"
        )


#: libcapi20's named semaphore guarding its shared ApplID table (capi.md §1.1)
CAPI_SEMAPHORE: Final = "/CAPI20_shared_sem.v01000010"
#: the library's critical sections take microseconds: a semaphore held this long is stale
STALE_AFTER: Final = 2.0


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def repair_stale_semaphore(name: str = CAPI_SEMAPHORE, *, shm_dir: str = SHM_DIR,
                           stale_after: float = STALE_AFTER) -> bool:
    """Release libcapi20's shared semaphore if a process died holding it.

    The library's critical sections on its shared ApplID table are tiny; a process
    killed inside one (kill -9, OOM) leaves the semaphore at 0 for good, and every later
    libcapi20 load or register on the machine hangs (capi.md §1.1) — ccbsd could never
    start again until a reboot. Before loading, wait up to *stale_after* for the
    semaphore; if it never comes free it is stale: post it once and say so. Repairs are
    serialised with a lock file so two processes never post twice. Returns True when a
    repair was made."""
    libc = ctypes.CDLL(None, use_errno=True)
    sem_open = libc.sem_open
    sem_open.restype = ctypes.c_void_p
    sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.sem_timedwait.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Timespec)]
    libc.sem_post.argtypes = [ctypes.c_void_p]
    libc.sem_close.argtypes = [ctypes.c_void_p]
    libc.sem_getvalue.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    lock_path = os.path.join(shm_dir, "ccbs-isdn-capi-sem.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:  # another user's lock file: leave the check to that user
        log.debug("cannot open %s (%s): stale-semaphore check skipped", lock_path, exc)
        return False
    with os.fdopen(fd, "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sem = sem_open(name.encode(), 0)  # the existing semaphore only, never create
        if sem is None or sem == ctypes.c_void_p(-1).value:
            return False  # none yet: the library creates it on first load
        try:
            deadline = time.time() + stale_after
            spec = _Timespec(int(deadline), int((deadline % 1) * 1e9))
            while libc.sem_timedwait(sem, ctypes.byref(spec)) != 0:
                err = ctypes.get_errno()
                if err == errno.EINTR:
                    continue
                if err != errno.ETIMEDOUT:
                    return False
                value = ctypes.c_int(-1)
                libc.sem_getvalue(sem, ctypes.byref(value))
                if value.value > 0:  # freed just now
                    return False
                libc.sem_post(sem)
                log.warning("libcapi20's shared semaphore %s was held for more than %.0f s "
                            "(a process died inside the library); released it", name,
                            stale_after)
                return True
            libc.sem_post(sem)  # it was free: give back what we took
            return False
        finally:
            libc.sem_close(sem)


class CapiLib:
    """libcapi20.so.3 with every symbol typed and checked. One per process: use
    :func:`load`. Calls that talk to a remote server (isinstalled, register, get_profile,
    the get_* identity calls) block until the server answers (capi.md §3); call them off
    the event loop."""

    def __init__(self, name: str = LIBRARY_NAME, *, shm_dir: str = SHM_DIR) -> None:
        check_shm(shm_dir)
        repair_stale_semaphore(shm_dir=shm_dir)
        try:
            self._lib = ctypes.CDLL(name)
        except OSError as exc:
            raise DriverNotAvailable(
                f"cannot load {name} ({exc}): install the Debian package libcapi20-3"
            ) from exc
        for symbol, (argtypes, restype, errcheck) in _SYMBOLS.items():
            try:
                fn = getattr(self._lib, symbol)
            except AttributeError as exc:
                raise DriverNotAvailable(f"{name} has no symbol {symbol}") from exc
            fn.argtypes = argtypes
            fn.restype = restype
            if errcheck is not None:
                fn.errcheck = errcheck
        self.name = name
        # put_message is only called from one thread (the event loop); one buffer
        # serves every message and is large enough for the library's DATA_B3 append.
        self._send_buffer = ctypes.create_string_buffer(SEND_BUFSIZE)
        self._msg_pointer = _P_UBYTE()
        # Size of each application's receive buffers in the library (capi.md §1); a
        # received length word is never believed beyond it.
        self._receive_size: dict[int, int] = {}
        # The module's debug output defaults to level 255 (capi.md §1): silence it.
        self.set_tracelevel(0)

    # --------------------------------------------------------------- transport choice
    def configure(self, driver: str = "", host: str = "", port: int = 0) -> None:
        """Select the transport before ``isinstalled`` (capi.md §2.2). An empty *driver*
        leaves the choice to the library (its .capi20rc, then auto-detection). A REMOTE
        line in $HOME/.capi20rc overrides what is set here."""
        if driver:
            if driver.lower() not in DRIVERS:
                raise ConfigError(f"unknown libcapi20 driver {driver!r}", key="capi.driver",
                                  expected=" | ".join(DRIVERS))
            self._lib.capi20ext_set_driver(driver.encode())
        if host:
            self._lib.capi20ext_set_host(host.encode())
        if port:
            # 65535 equals the library's "unset" marker -1 (stored as signed 16 bit).
            if not 1 <= port <= 65534:
                raise ConfigError(f"port {port} cannot be used with libcapi20", key="capi.port",
                                  expected="1..65534")
            self._lib.capi20ext_set_port(port)

    def set_tracelevel(self, level: int) -> None:
        self._lib.capi20ext_set_tracelevel(level)

    def transport(self) -> tuple[str, str, int]:
        """(driver, host, port) as the library currently sees them (port -1 = unset;
        ports above 32767 read back negative, capi.md §1)."""
        drv = self._lib.capi20ext_get_driver() or b""
        host = self._lib.capi20ext_get_host() or b""
        return drv.decode(errors="replace"), host.decode(errors="replace"), int(
            self._lib.capi20ext_get_port()
        )

    # ------------------------------------------------------------------- application
    def isinstalled(self) -> None:
        self._lib.capi20_isinstalled()

    def register(
        self, max_logical_connection: int = 2, max_b_data_blocks: int = 7,
        max_b_data_len: int = 2048,
    ) -> int:
        appl = _UINT(0)
        self._lib.capi20_register(
            max_logical_connection, max_b_data_blocks, max_b_data_len, ctypes.byref(appl)
        )
        self._receive_size[appl.value] = max(MIN_RECEIVE_SIZE, 128 + max_b_data_len)
        return appl.value

    def release(self, appl_id: int) -> None:
        self._receive_size.pop(appl_id, None)
        self._lib.capi20_release(appl_id)

    def fileno(self, appl_id: int) -> int:
        fd: int = self._lib.capi20_fileno(appl_id)
        return fd

    def put_message(self, appl_id: int, raw: bytes) -> None:
        """Send one CAPI message (its length word says how many octets)."""
        if len(raw) > SEND_BUFSIZE:
            raise CapiError(0x1102, f"message of {len(raw)} octets is too long",
                            call="capi20_put_message")
        ctypes.memmove(self._send_buffer, raw, len(raw))
        self._lib.capi20_put_message(appl_id, self._send_buffer)

    def get_message(self, appl_id: int) -> bytes | None:
        """The next message, copied out of the library's buffer; None for 0x1104 (queue
        empty — with the remote modules also what EOF looks like, capi.md §3)."""
        info = self._lib.capi20_get_message(appl_id, ctypes.byref(self._msg_pointer))
        if info == INFO_QUEUE_EMPTY:
            return None
        pointer = self._msg_pointer
        # The buffer is recycled by the next call: copy the message now. The length word
        # comes from the peer (a card, a remote CAPI server): bound it by the library's
        # receive buffer, or a lying peer makes us read past it (found by fuzzing). An
        # over-long message is then truncated and refused by the message decoder.
        length = pointer[0] | (pointer[1] << 8)
        limit = self._receive_size.get(appl_id, MIN_RECEIVE_SIZE)
        return ctypes.string_at(pointer, min(length, limit))

    def waitformessage(self, appl_id: int, timeout: float | None) -> bool:
        if timeout is None:
            info = self._lib.capi20_waitformessage(appl_id, None)
        else:
            tv = Timeval(int(timeout), int((timeout - int(timeout)) * 1e6))
            info = self._lib.capi20_waitformessage(appl_id, ctypes.byref(tv))
        return bool(info == 0)

    # --------------------------------------------------------------- controller data
    def get_profile(self, ctrl: int) -> Profile:
        buf = ctypes.create_string_buffer(PROFILE_SIZE)
        self._lib.capi20_get_profile(ctrl, buf)
        return Profile.decode(buf.raw)

    def number_of_controllers(self) -> int:
        buf = ctypes.create_string_buffer(PROFILE_SIZE)
        self._lib.capi20_get_profile(0, buf)
        count: int = struct.unpack_from("<H", buf.raw)[0]
        return count

    def get_manufacturer(self, ctrl: int) -> str:
        buf = ctypes.create_string_buffer(64)
        self._lib.capi20_get_manufacturer(ctrl, buf)
        return buf.value.decode("latin-1")

    def get_version(self, ctrl: int) -> tuple[int, int, int, int]:
        buf = ctypes.create_string_buffer(16)
        self._lib.capi20_get_version(ctrl, buf)
        major, minor, manu_major, manu_minor = struct.unpack("<IIII", buf.raw)
        return major, minor, manu_major, manu_minor

    def get_serial_number(self, ctrl: int) -> str:
        buf = ctypes.create_string_buffer(8)
        self._lib.capi20_get_serial_number(ctrl, buf)
        return buf.value.decode("latin-1")


_loaded: CapiLib | None = None
_load_lock = threading.Lock()


def load(name: str = LIBRARY_NAME) -> CapiLib:
    """The process's libcapi20, loaded on first use (DriverNotAvailable if it cannot)."""
    global _loaded
    with _load_lock:
        if _loaded is None:
            _loaded = CapiLib(name)
        return _loaded


def capi20rc_text(driver: str, host: str, port: int) -> str:
    """The contents of a ``.capi20rc`` selecting a remote CAPI server. The library drops
    the last character of every line, so the line must end with a newline (capi.md §2.2)."""
    if driver.lower() not in ("fritzbox", "rcapi"):
        raise ConfigError(f"driver {driver!r} is not a remote CAPI module",
                          key="capi.driver", expected="rcapi | fritzbox")
    return f"REMOTE {driver} {host} {port}\n"
