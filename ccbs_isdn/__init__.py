"""ccbs-isdn: Completion of Calls to Busy Subscriber for ISDN (CAPI 2.0) and analog FXS ports.

Importing this package loads no device library and touches no device.
"""

__version__ = "0.1.0"
