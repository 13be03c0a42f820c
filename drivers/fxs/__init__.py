"""FXS bridge driver (FXB/1 over a serial line): ``driver.FxsDriver``, ``driver.FxsConfig``.

Imported lazily: ``import ccbs_isdn.drivers`` must not pull in pyserial.
"""
