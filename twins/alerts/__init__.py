"""Alerting, pure: rules (``rules``), alert records and the per-vehicle book (``state``), lifecycle (``engine``)."""
