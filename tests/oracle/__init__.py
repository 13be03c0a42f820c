"""Reusable test oracles (libpri through ctypes)."""
