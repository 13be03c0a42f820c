"""Device drivers, installed as ``ccbs_isdn.drivers``.

A driver owns its device (a CAPI application, a serial line, a simulator), turns bytes
into typed events, executes actions and reports up/down. It never decides CCBS policy.
Backends are found through the ``ccbs_isdn.drivers`` entry-point group and imported
lazily, so a missing vendor library (libcapi20) never breaks ``import ccbs_isdn``.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

#: Built-in backends; entry points may add more.
BUILTIN = {
    "capi20": "ccbs_isdn.drivers.capi20.driver:CapiDriver",
    "fxs": "ccbs_isdn.drivers.fxs.driver:FxsDriver",
    "sim": "ccbs_isdn.drivers.sim.box:SimBox",
}


def load_driver(name: str) -> Any:
    """Return the driver class registered as *name* (imported only now)."""
    from ccbs_isdn.errors import DriverNotAvailable

    target = BUILTIN.get(name)
    if target is None:
        for ep in entry_points(group="ccbs_isdn.drivers"):
            if ep.name == name:
                target = ep.value
                break
    if target is None:
        known = ", ".join(sorted(BUILTIN))
        raise DriverNotAvailable(f"unknown driver {name!r}; known drivers: {known}")
    module_name, _, attr = target.partition(":")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise DriverNotAvailable(f"driver {name!r} cannot be imported: {exc}") from exc
    return getattr(module, attr)
