"""Sweep constants that the CLI's parser needs without importing Optuna (so `--help` stays fast)."""

SAMPLERS = ("random", "grid", "tpe")
HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats (PostgreSQL)
GRACE_PERIOD = 30  # seconds without a heartbeat before a trial is re-queued
