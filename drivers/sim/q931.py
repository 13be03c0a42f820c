"""Q.931 messages between the simulated exchange and the simulated controllers.

This is the seam of the simulator: ``drivers/sim/exchange.py`` (the public network,
ETSI network-side CCBS) and ``drivers/sim/controller.py`` (the card firmware behind the
rcapi server) talk only in these messages, one BRI *access* (D channel) at a time, the
way a real card and a real exchange do. The exchange never sees CAPI; the controller
never decides CCBS.

Only the information elements that basic calls and CCBS need are modelled. Facility
IEs travel as their *contents* (protocol-profile octet onwards, without the ``1C len``
header), one entry per IE, exactly as ``ccbs_isdn.rose`` frames them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field


class MsgType(enum.IntEnum):
    """Q.931 message types (values as on the wire)."""

    ALERTING = 0x01
    CALL_PROCEEDING = 0x02
    SETUP = 0x05
    CONNECT = 0x07
    CONNECT_ACK = 0x0F
    DISCONNECT = 0x45
    RELEASE = 0x4D
    RELEASE_COMPLETE = 0x5A
    FACILITY = 0x62
    REGISTER = 0x64


@dataclass(frozen=True, slots=True)
class Q931:
    """One message on one access.

    ``cr`` is the call reference value chosen by the side that opened the call
    (SETUP or REGISTER), ``None`` for the dummy call reference (call-independent
    PTMP traffic). ``from_network`` tells the direction. ``called``/``calling`` are
    digit strings; ``bearer`` holds the complete BC (and HLC/LLC) IEs; ``cause`` the
    Q.850 cause of a clearing message; ``facility`` the Facility IE contents.
    """

    type: MsgType
    cr: int | None
    from_network: bool
    called: str = ""
    calling: str = ""
    bearer: bytes = b""
    cause: int | None = None
    facility: tuple[bytes, ...] = field(default_factory=tuple)


#: How the exchange hands a network -> user message to the controller of an access.
Deliver = Callable[[Q931], None]
