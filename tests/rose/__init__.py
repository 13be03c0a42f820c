"""Tests of ccbs_isdn.rose: vectors, round trips, libpri cross-check, fuzzing, schema."""
