"""The disk fills up under a running ccbsd: new requests are refused with a clear
error, the existing ones carry on, and nothing is lost once there is room again.

A full disk without root: the kernel's per-process file-size limit (RLIMIT_FSIZE,
set on the running daemon with prlimit(2)) makes every write that would grow a file
fail (EFBIG; Python ignores SIGXFSZ). The WAL of the store can no longer grow, so the
next commit fails exactly as on a full disk (SQLite reports it as a write I/O error
rather than SQLITE_FULL; the daemon treats every StoreError alike). The daemon's log
file cannot grow either, as on a real full disk."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from ccbs_isdn.drivers.sim.demo import ControlRefused, Stage

from tests.stories.conftest import ANNA, BERT

from .harness import ChaosStats, read_store, store_path

pytestmark = pytest.mark.integration

CLEO, DIRK = "23", "24"


def fill_disk(stage: Stage) -> int:
    """No file of the daemon may grow from now on; returns the limit set."""
    assert stage.ccbsd.proc is not None
    wal = Path(str(store_path(stage)) + "-wal")
    limit = max(1, wal.stat().st_size)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.prlimit(stage.ccbsd.proc.pid, resource.RLIMIT_FSIZE, (limit, hard))
    return limit


def free_disk(stage: Stage) -> None:
    assert stage.ccbsd.proc is not None
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.prlimit(stage.ccbsd.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))


async def test_a_full_disk_refuses_new_requests_keeps_the_old_and_catches_up(
        stage: Stage, stats: ChaosStats) -> None:
    box = stage.box
    anna, bert, dirk = box.phone(1), box.phone(2), box.phone(4)
    await stage.lift(bert)
    await stage.lift(dirk)
    await stage.call_busy(anna, BERT)
    await stage.activate(anna)
    first = await stage.pending(ANNA, BERT)
    await stage.hang_up(anna)

    fill_disk(stage)
    stats.faults["disk-full"] += 1
    # the step that meets the full disk carries on in memory (its changes wait, see
    # runtime/service.py); from then on every new request is refused, clearly
    accepted: list[dict[str, object]] = []
    refusal: ControlRefused | None = None
    for caller, target in ((CLEO, DIRK), (DIRK, BERT), (CLEO, BERT)):
        try:
            accepted.append(await stage.ccbsd.call("request", caller=caller, target=target))
        except ControlRefused as exc:
            refusal = exc
            break
    assert refusal is not None, accepted
    assert len(accepted) <= 1
    assert refusal.error["code"] == "refused"
    assert "cannot be stored right now" in refusal.error["message"]
    status = await stage.status()
    assert status["daemon"]["store_writable"] is False
    # ccbsctl says so too, with the refusal's exit code and message
    code, out, err = await stage.ccbsd.ctl("request", "--from", DIRK, "--to", BERT)
    assert code != 0 and "cannot be stored right now" in (err + out)

    # the existing request carries on: Bert hangs up, Anna is called back
    since = stage.mark()
    await stage.hang_up(bert)
    await stage.recall_ring(anna, since=since, clip=BERT)
    anna.answer()
    await box.wait_for(lambda: bert.ringing, 10, "Bert rings")
    bert.answer()
    await box.wait_for(lambda: anna.peer == 2, 10, "connected")
    await stage.until(lambda st: first["id"] not in {r["id"] for r in st["requests"]},
                      15, "the recall completed")
    # nothing of it could be written yet
    on_disk = {r.id: r for r in read_store(stage)}
    assert on_disk[first["id"]].state != "Completed"

    free_disk(stage)
    # the next step writes everything that waited, then is judged normally
    again = await stage.ccbsd.call("request", caller=CLEO, target=BERT)
    status = await stage.status()
    assert status["daemon"]["store_writable"] is True
    on_disk = {r.id: r for r in read_store(stage)}
    assert on_disk[first["id"]].state == "Completed"
    history = await stage.history(first["id"])
    assert [h["new_state"] for h in history["history"]][-1] == "Completed"
    for request in accepted:
        assert int(str(request["id"])) in on_disk
    assert again["id"] in on_disk
    assert "request store writable again" in stage.ccbsd.log()

    # and a kill -9 now loses nothing of it
    await stage.hang_up(anna)
    await stage.hang_up(bert)
    await stage.ccbsd.kill()
    stats.kills_survived += 1
    await stage.start_daemon()
    active = {r["id"] for r in (await stage.status())["requests"]}
    expected = {again["id"], *(int(str(r["id"])) for r in accepted)}
    assert expected <= active
    assert (await stage.history(first["id"]))["state"] == "Completed"
    await stage.hang_up(dirk)
