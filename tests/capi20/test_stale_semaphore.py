"""A process killed inside libcapi20 leaves its shared semaphore at 0: the driver repairs
it before loading the library instead of hanging forever (capi.md §1.1)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator

import pytest
from ccbs_isdn.drivers.capi20.lib import repair_stale_semaphore

libc = ctypes.CDLL(None, use_errno=True)
libc.sem_open.restype = ctypes.c_void_p
libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
libc.sem_getvalue.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
libc.sem_close.argtypes = [ctypes.c_void_p]
libc.sem_unlink.argtypes = [ctypes.c_char_p]
O_CREAT = os.O_CREAT


@pytest.fixture
def semaphore(tmp_path: object) -> Iterator[tuple[str, int]]:
    """A private named semaphore (value set per test) standing in for libcapi20's."""
    name = f"/ccbs-test-sem-{os.getpid()}-{id(tmp_path)}"
    handles: list[int] = []

    def make(value: int) -> int:
        sem = libc.sem_open(name.encode(), O_CREAT | os.O_EXCL, 0o600, value)
        assert sem, "sem_open failed"
        handles.append(sem)
        return sem

    yield name, make  # type: ignore[misc]
    for sem in handles:
        libc.sem_close(sem)
    libc.sem_unlink(name.encode())


def value_of(sem: int) -> int:
    value = ctypes.c_int(-1)
    libc.sem_getvalue(sem, ctypes.byref(value))
    return value.value


def test_a_semaphore_held_by_a_dead_process_is_released_once(semaphore, tmp_path) -> None:
    name, make = semaphore
    sem = make(0)  # what a process killed inside the critical section leaves behind
    assert repair_stale_semaphore(name, shm_dir=str(tmp_path), stale_after=0.2) is True
    assert value_of(sem) == 1
    # the next check finds it free and leaves it exactly as it was
    assert repair_stale_semaphore(name, shm_dir=str(tmp_path), stale_after=0.2) is False
    assert value_of(sem) == 1


def test_a_free_semaphore_is_left_alone(semaphore, tmp_path) -> None:
    name, make = semaphore
    sem = make(1)
    assert repair_stale_semaphore(name, shm_dir=str(tmp_path), stale_after=0.2) is False
    assert value_of(sem) == 1


def test_no_semaphore_yet_is_nothing_to_repair(tmp_path) -> None:
    name = f"/ccbs-test-none-{os.getpid()}"
    assert repair_stale_semaphore(name, shm_dir=str(tmp_path), stale_after=0.2) is False
    assert not os.path.exists(f"/dev/shm/sem.{name[1:]}")
