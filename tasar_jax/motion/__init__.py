"""Temporal motion dynamics of TASAR: tvReg's time-varying AR fits and the per-sample AR1/AR2 arrays (float64)."""
