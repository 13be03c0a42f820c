"""Building blocks of the simulated public exchange (``drivers/sim/exchange.py``).

This package owns the exchange's pure helpers: the timer queue, the model records
(calls, legs, CC records) and the adapter to the ROSE codec. Like the exchange itself
it does no I/O, no asyncio and reads no clock; time always arrives as ``now``.
"""
