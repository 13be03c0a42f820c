"""The CCBS rulebooks: every state and every transition of every role, as data.

======================================================================================
RULES. Only this file decides which state a request can be in and which trigger moves
it where. ``engine.py`` turns events and timers into *triggers* and implements the
*callbacks* named here (conditions / after); it never assigns ``state`` itself.
Tables are read top to bottom: for one trigger and source the first row whose
conditions hold wins (``transitions`` semantics). ``dest`` None = internal transition
(no state change, callbacks still run). A trigger that has no row for the current
state is ignored. Timers are triggers too: a callback arms ``(trigger, deadline)``.
Final states end the request (history and store keep it).
======================================================================================

Roles (architecture.md §3):

* ``monitor`` — we are user A toward the ISDN network: the user-A table of
  EN 300 359-1 as digested in etsi-ccbs.md §6 (PTMP), plus the CCBS-T variant for a
  point-to-point access (EN 300 359-1 private-network operations, ``ptp``
  conditions) and CCNR (EN 301 065-1: same machine, ``kind`` differs).
  Refinement: ``Suspended`` names the "B free but A busy" situation that §6 keeps in
  Activated (CCBSBFree on PTMP, CCBS-T-Suspend sent on PTP); it behaves like
  Activated for every other trigger.
* ``local`` — A and B are our own FXS ports; the box is the network: FIFO per B,
  guard time, re-check poll, suspension, recall ring A then B, missed-recall retry,
  and a recall a restart interrupted while B was rung (``Interrupted``).
* ``redial`` — fallback for an external B without network CCBS: probe B by calling
  it; when it alerts ring A, when A answers connect. B is never called while A is
  unavailable, and the probe is released if A does not answer.

``rulebook(role)`` / ``diagram_data()`` export exactly these tables for
``ccbsctl diagram``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypedDict

from transitions import Machine

from ccbs_isdn.engine.request import Role
from ccbs_isdn.isdn import EraseReason


class Rule(TypedDict, total=False):
    trigger: str | list[str]
    source: str | list[str]
    dest: str | None
    conditions: str | list[str]
    unless: str | list[str]
    after: str | list[str]
    why: str  # the clause or reason; shown in diagrams, not passed to transitions


# Final states shared by every role. The reason slug is on the request.
COMPLETED: Final = "Completed"
CANCELLED: Final = "Cancelled"
EXPIRED: Final = "Expired"
FAILED: Final = "Failed"
FINAL_STATES: Final[tuple[str, ...]] = (COMPLETED, CANCELLED, EXPIRED, FAILED)

STATES: Final[Mapping[Role, tuple[str, ...]]] = {
    Role.MONITOR: (
        "Available",  # CallInfoRetain / CCBS-T-Available received: CC can be asked for
        "Requested",  # CCBSRequest / CC-T request sent, T-ACTIVATE running
        "WaitDestruction",  # cancelled while Requested: deactivate once the result comes
        "Activated",  # the network watches B (local supervision T-CCBS2/T-CCNR2/-6)
        "Suspended",  # B free but A busy (CCBSBFree; CCBS-T-Suspend sent)
        "WaitCallback",  # CCBSRemoteUserFree: A is being recalled
        "Callback",  # recall SETUP with CCBSCall(R) / CCBS-T-Call sent
        *FINAL_STATES,
    ),
    Role.LOCAL: (
        "Waiting",  # in B's FIFO, B busy (or not our turn)
        "Guard",  # B went on-hook: guard time before believing it
        "Recheck",  # poll of A and B asked for, waiting for the answers
        "Suspended",  # B free but A busy / quiet hours / bridge away
        "RecallA",  # ringing A with the recall cadence, CLIP = B
        "RecallB",  # A answered: ringing B, cross-connect pending
        "Interrupted",  # restarted in RecallB: did B answer? the bridge's links decide
        "RetryWait",  # a recall was missed: pause before the next try
        "Notified",  # notify mode: A was told that B is free
        *FINAL_STATES,
    ),
    Role.REDIAL: (
        "Waiting",  # until the next probe
        "Dialling",  # probe call to B placed
        "RecallA",  # B alerts: ringing A
        "Connecting",  # A answered and is on the call; waiting for B to answer
        "Suspended",  # bridge away
        *FINAL_STATES,
    ),
}

_MON_ACTIVE = ["Activated", "Suspended", "WaitCallback", "Callback"]

MONITOR_RULES: Final[tuple[Rule, ...]] = (
    # -- offer (etsi-ccbs.md §5.1, §6 Available)
    {"trigger": "activate", "source": "Available", "dest": "Requested", "after": "send_request",
     "why": "§6: application asks for CC -> CCBSRequest/CCNRRequest(L) or CC-T REGISTER, "
            "start T-ACTIVATE"},
    {"trigger": "erase_linkage", "source": "Available", "dest": CANCELLED,
     "after": "offer_gone", "why": "§6: EraseCallLinkageID(L) -> report cancel"},
    {"trigger": "retention", "source": "Available", "dest": EXPIRED, "after": "offer_gone",
     "why": "§6: local retention guard (T-RETENTION) expired"},
    {"trigger": "cancel", "source": "Available", "dest": CANCELLED, "after": "offer_gone",
     "why": "§6: application cancels, nothing to send"},
    # -- activation (§5.1, §5.2, §6 Requested / WaitDestruction)
    {"trigger": "result_ok", "source": "Requested", "dest": "Activated", "after": "activated",
     "why": "§6: result(recallMode, R): store R, drop L, start local supervision"},
    {"trigger": "result_error", "source": "Requested", "dest": FAILED,
     "after": "activation_failed", "why": "§6: return error / reject -> report failure"},
    {"trigger": "t_activate", "source": "Requested", "dest": FAILED,
     "after": "activation_failed", "why": "§6: T-ACTIVATE expiry"},
    {"trigger": "conn_cleared", "source": "Requested", "dest": FAILED,
     "after": "activation_failed", "why": "CCBS-T: connection cleared without a result"},
    {"trigger": "cancel", "source": "Requested", "dest": "WaitDestruction",
     "why": "§6: application cancels while Requested: remember to cancel"},
    {"trigger": "result_ok", "source": "WaitDestruction", "dest": CANCELLED,
     "after": ["note_reference", "send_deactivate"],
     "why": "§6: result arrives -> CCBSDeactivate(R)"},
    {"trigger": "result_error", "source": "WaitDestruction", "dest": CANCELLED},
    {"trigger": "t_activate", "source": "WaitDestruction", "dest": CANCELLED},
    {"trigger": "conn_cleared", "source": "WaitDestruction", "dest": CANCELLED},
    # -- B free / A busy (§5.3, §5.4; CCBS-T §5.7)
    {"trigger": "bfree", "source": ["Activated", "Suspended"], "dest": "Suspended",
     "why": "§5.4: CCBSBFree: B free but A busy, suspended at the network"},
    {"trigger": "status_free", "source": "Suspended", "dest": "Activated", "unless": "is_ptp",
     "why": "§5.4: A answered free to CCBSStatusRequest: monitoring of B resumes"},
    {"trigger": "remote_user_free", "source": ["Activated", "Suspended"], "dest": "Suspended",
     "conditions": "is_ptp", "unless": "a_can_take_recall", "after": "send_t_suspend",
     "why": "§5.7: CCBS-T-RemoteUserFree while A busy -> CCBS-T-Suspend"},
    {"trigger": "remote_user_free", "source": ["Activated", "Suspended"],
     "dest": "WaitCallback", "after": "recall_a",
     "why": "§5.3/§6: CCBSRemoteUserFree -> alert A (or notify)"},
    {"trigger": "resume", "source": "Suspended", "dest": "Activated",
     "conditions": ["is_ptp", "a_can_take_recall"], "after": "send_t_resume",
     "why": "§5.7: A free again -> CCBS-T-Resume"},
    {"trigger": "stop_alerting", "source": "WaitCallback", "dest": "Activated",
     "after": "stop_ring", "why": "§6: CCBSStopAlerting: another terminal took the recall"},
    # -- the recall (§5.3, §5.5)
    {"trigger": "a_free", "source": "WaitCallback", "dest": None, "conditions": "can_ring_a",
     "after": "ring_a", "why": "A became free while B is free: ring now"},
    {"trigger": "retry", "source": "WaitCallback", "dest": None, "conditions": "can_ring_a",
     "after": "ring_a", "why": "missed recall tried again"},
    {"trigger": "a_missed", "source": "WaitCallback", "dest": None,
     "conditions": "retries_left", "after": "schedule_retry"},
    {"trigger": "a_missed", "source": "WaitCallback", "dest": FAILED,
     "after": ["recall_not_answered", "send_deactivate"]},
    {"trigger": "a_answered", "source": "WaitCallback", "dest": "Callback",
     "after": "place_recall",
     "why": "§6: user accepts -> SETUP(B, original BC/HLC/LLC) + CCBSCall(R) / CCBS-T-Call"},
    {"trigger": "dialled", "source": "WaitCallback", "dest": "Callback", "after": "claim_recall",
     "why": "A dialled B himself while B is free: that call is the recall"},
    {"trigger": "dialled", "source": ["Activated", "Suspended"], "dest": None,
     "after": "watch_call", "why": "A calls B himself: if it connects, the request is done"},
    {"trigger": "call_connected", "source": "Callback", "dest": COMPLETED,
     "after": "recall_connected",
     "why": "chan_misdn: the record ends on CONNECT of the recall (CC-T: clear the link)"},
    {"trigger": "call_connected", "source": ["Activated", "Suspended"], "dest": COMPLETED,
     "after": ["own_call_connected", "send_deactivate"]},
    {"trigger": "call_failed", "source": "Callback", "dest": FAILED,
     "conditions": "recall_refused", "after": "recall_failed",
     "why": "§5.3: invalidCCBSReference / alreadyAccepted in the clearing of the recall"},
    {"trigger": "call_failed", "source": "Callback", "dest": "Activated",
     "after": "recall_call_failed",
     "why": "§5.5: recall call failed; the network erases (basic-call-failed) or keeps it"},
    {"trigger": "call_failed", "source": ["Activated", "Suspended"], "dest": None,
     "after": "forget_call"},
    {"trigger": "a_hung_up", "source": "Callback", "dest": None, "after": "hang_up_call",
     "why": "A put the handset down before B answered"},
    {"trigger": "ports_unavailable", "source": "WaitCallback", "dest": None,
     "after": "stop_ring"},
    # -- end of the request (§5.5, §5.6)
    {"trigger": "erase_normal", "source": "Callback", "dest": COMPLETED, "after": "erased",
     "why": "§5.3: CCBSErase(normal) once the recall went out"},
    {"trigger": "erase_normal", "source": ["Activated", "Suspended", "WaitCallback"],
     "dest": CANCELLED, "after": "erased", "why": "§5.6: cancelled by the network"},
    {"trigger": "erase_t_ccbs2", "source": _MON_ACTIVE, "dest": EXPIRED, "after": "erased",
     "why": "§5.6: service duration over"},
    {"trigger": "erase_t_ccbs3", "source": _MON_ACTIVE, "dest": FAILED, "after": "erased",
     "why": "§5.5: recall not accepted in time"},
    {"trigger": "erase_call_failed", "source": _MON_ACTIVE, "dest": FAILED, "after": "erased",
     "why": "§5.5: basic call failed"},
    {"trigger": "conn_cleared", "source": "Callback", "dest": COMPLETED, "after": "erased",
     "why": "CCBS-T: B side clears the link after the recall"},
    {"trigger": "conn_cleared", "source": ["Activated", "Suspended", "WaitCallback"],
     "dest": CANCELLED, "after": "erased", "why": "§6 PTP: loss of the connection ends it"},
    {"trigger": "reconcile_lost", "source": "Callback", "dest": COMPLETED,
     "after": "network_done",
     "why": "CCBSInterrogate: R gone after our CCBSCall went out -> the network completed it"},
    {"trigger": "reconcile_lost", "source": ["Activated", "Suspended", "WaitCallback"],
     "dest": CANCELLED, "after": "network_lost",
     "why": "CCBSInterrogate after a restart: R no longer held"},
    {"trigger": "reconcile_held", "source": "Callback", "dest": "WaitCallback",
     "after": "restart_recall",
     "why": "R still held but our recall call died with the driver: the network may still "
            "wait for CCBSCall (T-CCBS3): re-check A and ring again (new key)"},
    {"trigger": "cancel", "source": _MON_ACTIVE, "dest": CANCELLED,
     "after": ["stop_ring", "send_deactivate", "mark_cancelled"],
     "why": "§5.6/§6: CCBSDeactivate(R)"},
    {"trigger": "lifetime", "source": ["Activated", "Suspended", "WaitCallback"],
     "dest": EXPIRED, "after": ["stop_ring", "send_deactivate", "mark_lifetime"],
     "why": "§4/§6: local supervision T-CCBS2/T-CCNR2 (PTP T-CCBS6/T-CCNR6) expired"},
    # -- restart (persisted state rebuilt) and reconnect (the CAPI link came back): the
    #    driver lost every open operation and call; the FXS side (a ringing A) did not
    #    lose anything on a reconnect, but a restart stops and re-checks the ring.
    {"trigger": ["restart", "reconnect"], "source": "Requested", "dest": None,
     "conditions": "is_ptp", "after": "send_request",
     "why": "CC-T: the REGISTER link died with the driver; request again (no linkage needed)"},
    {"trigger": ["restart", "reconnect"], "source": ["Requested", "WaitDestruction"],
     "dest": None, "unless": "is_ptp", "after": ["reconcile", "await_adoption"],
     "why": "did CCBSRequest reach the network? CCBSInterrogate decides: adopt the one "
            "unknown reference, or send the request again"},
    {"trigger": ["restart", "reconnect"], "source": "WaitDestruction", "dest": CANCELLED,
     "conditions": "is_ptp"},
    {"trigger": "resend", "source": "Requested", "dest": None, "after": "send_request"},
    {"trigger": "resend", "source": "WaitDestruction", "dest": CANCELLED},
    {"trigger": ["restart", "reconnect"], "source": _MON_ACTIVE, "dest": "Requested",
     "conditions": "is_ptp", "after": ["stop_ring", "send_request"],
     "why": "CC-T: the REGISTER link died with the driver; request again (no linkage needed)"},
    {"trigger": ["restart", "reconnect"], "source": "Callback", "dest": None,
     "after": ["forget_call", "reconcile", "await_reconcile"],
     "why": "the recall call died with the driver; CCBSInterrogate tells whether it counted"},
    {"trigger": "restart", "source": "WaitCallback", "dest": None,
     "after": ["reconcile", "restart_recall"],
     "why": "re-check A before ringing again (new key)"},
    {"trigger": "restart", "source": ["Activated", "Suspended"], "dest": None,
     "after": "reconcile"},
    {"trigger": "reconnect", "source": ["Activated", "Suspended", "WaitCallback"],
     "dest": None, "after": "reconcile"},
    {"trigger": "quiet_end", "source": "Suspended", "dest": "Activated",
     "conditions": ["is_ptp", "a_can_take_recall"], "after": "send_t_resume"},
)

_LOCAL_ACTIVE = ["Waiting", "Guard", "Recheck", "Suspended", "RecallA", "RecallB",
                 "Interrupted", "RetryWait", "Notified"]

LOCAL_RULES: Final[tuple[Rule, ...]] = (
    {"trigger": "b_free", "source": "Waiting", "dest": "Guard", "after": "start_guard",
     "why": "our turn in B's FIFO and B is on-hook: guard time (analog-bridge.md §5)"},
    {"trigger": "b_busy", "source": ["Guard", "Notified"], "dest": "Waiting"},
    {"trigger": "guard", "source": "Guard", "dest": "Recheck", "after": "start_recheck",
     "why": "re-check B (and A) by a poll before ringing A"},
    {"trigger": "checked", "source": "Recheck", "dest": "Waiting", "unless": "b_known_free",
     "after": "requeue"},
    {"trigger": "checked", "source": "Recheck", "dest": "Notified",
     "conditions": "notify_mode", "after": "notify_free"},
    {"trigger": "checked", "source": "Recheck", "dest": "RecallA",
     "conditions": "a_can_take_recall", "after": "ring_a"},
    {"trigger": "checked", "source": "Recheck", "dest": "Suspended", "after": "suspend",
     "why": "A busy, in quiet hours or unreachable when B frees: suspend"},
    {"trigger": "resume", "source": "Suspended", "dest": "Waiting",
     "conditions": "a_can_take_recall", "after": "requeue"},
    {"trigger": "quiet_end", "source": "Suspended", "dest": "Waiting",
     "conditions": "a_can_take_recall", "after": "requeue"},
    {"trigger": "quiet_end", "source": "Suspended", "dest": None, "after": "suspend"},
    {"trigger": "a_answered", "source": "RecallA", "dest": "RecallB",
     "conditions": "b_known_free", "after": "ring_b"},
    {"trigger": "a_answered", "source": "RecallA", "dest": "Waiting", "after": "b_gone",
     "why": "B got busy while A was rung: A hears busy, back in the queue"},
    {"trigger": "a_missed", "source": "RecallA", "dest": "RetryWait",
     "conditions": "retries_left", "after": "schedule_retry"},
    {"trigger": "a_missed", "source": "RecallA", "dest": FAILED,
     "after": "recall_not_answered"},
    {"trigger": "b_answered", "source": "RecallB", "dest": COMPLETED, "after": "connected"},
    {"trigger": "b_missed", "source": "RecallB", "dest": "RetryWait",
     "conditions": "retries_left", "after": ["b_not_answering", "schedule_retry"]},
    {"trigger": "b_missed", "source": "RecallB", "dest": FAILED,
     "after": ["b_not_answering", "recall_not_answered"]},
    {"trigger": "a_hung_up", "source": "RecallB", "dest": CANCELLED, "after": "abandoned",
     "why": "A put the handset down while B was rung"},
    {"trigger": "retry", "source": "RetryWait", "dest": "Waiting", "after": "requeue"},
    {"trigger": "dialled", "source": ["Waiting", "Guard", "Recheck", "Suspended", "RetryWait",
                                      "Notified"],
     "dest": COMPLETED, "conditions": "b_known_free", "after": "claim_own_call",
     "why": "A calls B himself while B is free: that call is the recall"},
    {"trigger": "ports_unavailable", "source": ["Waiting", "Guard", "Recheck", "RecallA",
                                                "RecallB", "RetryWait", "Notified"],
     "dest": "Suspended", "after": "lines_lost",
     "why": "product.md: a bridge that goes away suspends, never cancels"},
    {"trigger": "lifetime", "source": ["Waiting", "Guard", "Recheck", "Suspended", "RecallA",
                                       "RetryWait", "Notified"],
     "dest": EXPIRED, "after": "expired"},
    {"trigger": "cancel", "source": _LOCAL_ACTIVE, "dest": CANCELLED, "after": "cancelled"},
    {"trigger": "restart", "source": ["Guard", "Recheck", "RecallA"],
     "dest": "Recheck", "after": "restart_recheck",
     "why": "a recall may have been in flight: stop rings, re-check, ring with a new key"},
    {"trigger": "restart", "source": ["RecallB", "Interrupted"], "dest": "Interrupted",
     "after": "restart_poll",
     "why": "B was rung with the cross-connect pending: B may have answered in the last "
            "moments of the old daemon (the bridge connected A and B, the commit was "
            "lost). Touch nothing until a poll answer says what A and B are connected to"},
    {"trigger": "linked", "source": "Interrupted", "dest": COMPLETED, "after": "connected",
     "why": "A and B are cross-connected: B answered the recall, the request is done"},
    {"trigger": "unlinked", "source": "Interrupted", "dest": "Recheck",
     "after": "restart_recheck",
     "why": "B did not answer: stop B's ring, drop the pending connect, re-check"},
    {"trigger": "restart", "source": ["Waiting", "Suspended", "RetryWait", "Notified"],
     "dest": None, "after": "restart_poll"},
)

REDIAL_RULES: Final[tuple[Rule, ...]] = (
    {"trigger": "probe", "source": "Waiting", "dest": "Dialling",
     "conditions": "a_can_take_recall", "after": "place_probe",
     "why": "never call B while A cannot be rung"},
    {"trigger": "probe", "source": "Waiting", "dest": None, "after": "schedule_probe"},
    {"trigger": "call_alerting", "source": "Dialling", "dest": "RecallA", "after": "ring_a",
     "why": "B alerts, so B is free: ring A now"},
    {"trigger": "call_connected", "source": "Dialling", "dest": "RecallA",
     "after": ["note_b_answered", "ring_a"]},
    {"trigger": "call_connected", "source": "RecallA", "dest": None, "after": "note_b_answered"},
    {"trigger": "call_failed", "source": "Dialling", "dest": "Waiting",
     "after": "schedule_probe"},
    {"trigger": "call_failed", "source": ["RecallA", "Connecting"], "dest": "Waiting",
     "after": ["stop_ring", "probe_lost"]},
    {"trigger": "a_answered", "source": "RecallA", "dest": COMPLETED,
     "conditions": "b_has_answered", "after": ["bridge_probe", "connected"]},
    {"trigger": "a_answered", "source": "RecallA", "dest": "Connecting",
     "after": "bridge_probe"},
    {"trigger": "call_connected", "source": "Connecting", "dest": COMPLETED,
     "after": "connected"},
    {"trigger": "a_missed", "source": "RecallA", "dest": "Waiting",
     "conditions": "retries_left", "after": ["stop_ring", "schedule_retry_probe"],
     "why": "A did not answer: release B at once"},
    {"trigger": "a_missed", "source": "RecallA", "dest": FAILED,
     "after": ["hang_up_call", "recall_not_answered"]},
    {"trigger": "a_hung_up", "source": "Connecting", "dest": CANCELLED,
     "after": ["hang_up_call", "abandoned"]},
    {"trigger": "dialled", "source": ["Waiting", "Suspended"], "dest": None,
     "after": "watch_call"},
    {"trigger": "call_connected", "source": ["Waiting", "Suspended"], "dest": COMPLETED,
     "after": "own_call_connected"},
    {"trigger": "call_failed", "source": ["Waiting", "Suspended"], "dest": None,
     "after": "forget_call"},
    {"trigger": "ports_unavailable", "source": ["Waiting", "Dialling", "RecallA"],
     "dest": "Suspended", "after": ["stop_ring", "hang_up_call", "lines_lost"]},
    {"trigger": "resume", "source": "Suspended", "dest": "Waiting",
     "conditions": "a_can_take_recall", "after": "schedule_probe"},
    {"trigger": "lifetime", "source": ["Waiting", "Suspended", "Dialling", "RecallA"],
     "dest": EXPIRED, "after": ["stop_ring", "hang_up_call", "expired"]},
    {"trigger": "cancel", "source": ["Waiting", "Dialling", "RecallA", "Connecting",
                                     "Suspended"],
     "dest": CANCELLED, "after": ["stop_ring", "hang_up_call", "cancelled"]},
    {"trigger": "restart", "source": ["Dialling", "RecallA", "Connecting"], "dest": "Waiting",
     "after": ["stop_ring", "forget_call", "schedule_probe"],
     "why": "the probe call died with the restart; probe again later"},
    {"trigger": "restart", "source": ["Waiting", "Suspended"], "dest": None,
     "after": "restart_poll"},
)

RULES: Final[Mapping[Role, tuple[Rule, ...]]] = {
    Role.MONITOR: MONITOR_RULES,
    Role.LOCAL: LOCAL_RULES,
    Role.REDIAL: REDIAL_RULES,
}

#: CCBSErase reason (EN 300 359-1 CCBSEraseReason) -> monitor trigger.
ERASE_TRIGGERS: Final[Mapping[EraseReason, str]] = {
    EraseReason.NORMAL_UNSPECIFIED: "erase_normal",
    EraseReason.T_CCBS2_TIMEOUT: "erase_t_ccbs2",
    EraseReason.T_CCBS3_TIMEOUT: "erase_t_ccbs3",
    EraseReason.BASIC_CALL_FAILED: "erase_call_failed",
}

#: Initial state of a new request per role (monitor requests start as an offer).
INITIAL: Final[Mapping[Role, str]] = {
    Role.MONITOR: "Available",
    Role.LOCAL: "Waiting",
    Role.REDIAL: "Waiting",
}


def _expanded(role: Role) -> list[Rule]:
    """The table with one row per trigger (rows may list several triggers)."""
    rows: list[Rule] = []
    for rule in RULES[role]:
        for trigger in _names(rule["trigger"]):
            row: Rule = {**rule}
            row["trigger"] = trigger
            rows.append(row)
    return rows


def _sources(rule: Rule) -> list[str]:
    source = rule["source"]
    return [source] if isinstance(source, str) else list(source)


def _names(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def rulebook(role: Role) -> dict[str, Any]:
    """States and transitions of one role, flattened for diagrams and docs:
    ``{"role", "initial", "states", "final", "transitions": [{"trigger", "source",
    "dest", "conditions", "unless", "after", "why"}]}`` (one entry per source)."""
    flat: list[dict[str, Any]] = []
    for rule in _expanded(role):
        for source in _sources(rule):
            flat.append({
                "trigger": rule["trigger"],
                "source": source,
                "dest": rule.get("dest") or source,
                "internal": rule.get("dest") is None,
                "conditions": _names(rule.get("conditions")),
                "unless": _names(rule.get("unless")),
                "after": _names(rule.get("after")),
                "why": rule.get("why", ""),
            })
    return {
        "role": role.value,
        "initial": INITIAL[role],
        "states": list(STATES[role]),
        "final": list(FINAL_STATES),
        "transitions": flat,
    }


def diagram_data() -> dict[str, dict[str, Any]]:
    """Every role's rulebook, keyed by role name (what ``ccbsctl diagram`` renders)."""
    return {role.value: rulebook(role) for role in Role}


def triggers(role: Role) -> frozenset[str]:
    return frozenset(str(rule["trigger"]) for rule in _expanded(role))


def callbacks(role: Role) -> frozenset[str]:
    """Every condition and callback name a role's table refers to (the engine's model
    must implement all of them; a test checks it)."""
    names: set[str] = set()
    for rule in RULES[role]:
        for key in ("conditions", "unless", "after"):
            names.update(_names(rule.get(key)))  # type: ignore[arg-type]
    return frozenset(names)


def build_machine(role: Role, model: object) -> Machine:
    """One ``transitions.Machine`` for ``role`` with ``model`` attached (the engine
    binds that model to one request at a time). ``auto_transitions`` is off: only
    the rows above exist."""
    states: list[Any] = [
        {"name": name, "final": name in FINAL_STATES} for name in STATES[role]
    ]
    rules: Sequence[dict[str, Any]] = [
        {key: value for key, value in rule.items() if key != "why"} for rule in _expanded(role)
    ]
    return Machine(
        model=model,
        states=states,
        transitions=list(rules),
        initial=INITIAL[role],
        auto_transitions=False,
        ignore_invalid_triggers=True,
        send_event=False,
        name=role.value,
    )


__all__ = [
    "CANCELLED",
    "COMPLETED",
    "ERASE_TRIGGERS",
    "EXPIRED",
    "FAILED",
    "FINAL_STATES",
    "INITIAL",
    "RULES",
    "STATES",
    "build_machine",
    "callbacks",
    "diagram_data",
    "rulebook",
    "triggers",
]
