"""Maintenance timelines -> component ages and discrete-time hazard labels.

A row is a snapshot of one vehicle at time ``T`` (the end of a UTC day). For component ``c``:

* ``y = 1`` iff a **failure** of ``c`` happens in ``(T, T + H]`` (H = horizon, default 30 days);
* the component's **age** at ``T`` is the time since its last ``repair``/``replacement`` at or
  before ``T`` (else the vehicle age) — the same rule as ``twins.maintenance.component_age_days``,
  so rows after a failure continue with the age reset at the replacement;
* rows between a failure and the first repair/replacement at or after it are **down**: the
  component is not in service, so they are not at risk and not used (a failure with no
  later repair/replacement in the log is assumed fixed at once: nothing is dropped);
* rows with ``T + H`` after the vehicle's observation end (its last telemetry) are
  **censored** and dropped — all of them, also those whose failure is already known, so
  the label rate is not biased upwards near the end of the data.

``usable = ~down & ~censored`` selects the rows a model may be trained or scored on.

>>> from models.risk.dataset import MaintenanceEvent
>>> D = 86_400_000
>>> idx = EventIndex([MaintenanceEvent("V", "inverter", "failure", 10 * D + 5, None)])
>>> lab = make_labels(["V"] * 3, np.array([5, 9, 11]) * D, idx, "inverter", 3, end_ms=20 * D)
>>> lab.y.tolist(), lab.usable.tolist()
([0, 1, 0], [True, True, True])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.risk.dataset import MaintenanceEvent
from models.risk.feature_names import COMPONENTS

DAY_MS = 86_400_000
SERVICE_EVENTS = frozenset({"repair", "replacement"})
_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Timeline:
    """Sorted failure and service (repair/replacement) times of one component of one vehicle."""

    failures: NDArray[np.int64]
    services: NDArray[np.int64]


class EventIndex:
    """Maintenance events indexed by (vin, component)."""

    def __init__(self, events: Iterable[MaintenanceEvent]) -> None:
        fail: dict[tuple[str, str], list[int]] = {}
        serv: dict[tuple[str, str], list[int]] = {}
        for e in events:
            if e.event == "failure":
                fail.setdefault((e.vin, e.component), []).append(e.time_ms)
            elif e.event in SERVICE_EVENTS:
                serv.setdefault((e.vin, e.component), []).append(e.time_ms)
        keys = set(fail) | set(serv)
        self._t = {k: Timeline(np.array(sorted(fail.get(k, ())), dtype=np.int64),
                               np.array(sorted(serv.get(k, ())), dtype=np.int64)) for k in keys}
        self._empty = Timeline(_EMPTY, _EMPTY)

    def timeline(self, vin: str, component: str) -> Timeline:
        """The component's timeline (empty arrays when the log has nothing)."""
        return self._t.get((vin, component), self._empty)

    def failures(self, component: str) -> list[tuple[str, int]]:
        """All ``(vin, time_ms)`` failures of ``component``."""
        return [(vin, int(t)) for (vin, c), tl in self._t.items() if c == component for t in tl.failures]

    def last_service_ms(self, vin: str, component: str, now_ms: int) -> int | None:
        """Newest repair/replacement at or before ``now_ms`` (None if none)."""
        s = self.timeline(vin, component).services
        i = int(np.searchsorted(s, now_ms, side="right"))
        return int(s[i - 1]) if i else None

    def component_ages_days(self, vin: str, now_ms: int) -> dict[str, float | None]:
        """Days since each component's last repair/replacement (None = never: use the vehicle age)."""
        out: dict[str, float | None] = {}
        for c in COMPONENTS:
            t = self.last_service_ms(vin, c, now_ms)
            out[c] = None if t is None else max(0.0, (now_ms - t) / DAY_MS)
        return out


@dataclass(frozen=True)
class Labels:
    """Per-row labels of one component (arrays aligned with the rows)."""

    y: NDArray[np.int8]
    usable: NDArray[np.bool_]
    censored: NDArray[np.bool_]
    down: NDArray[np.bool_]
    days_to_failure: NDArray[np.float64]   # to the next failure after T (NaN if none in the log)


def make_labels(vins: Sequence[str] | NDArray[np.str_], now_ms: NDArray[np.int64], index: EventIndex,
                component: str, horizon_days: float, end_ms: Mapping[str, int] | int) -> Labels:
    """Labels for rows ``(vins[i], now_ms[i])`` (see the module docstring for the rules)."""
    vins_arr = np.asarray(vins)
    now = np.asarray(now_ms, dtype=np.int64)
    n = len(now)
    if len(vins_arr) != n:
        raise ValueError(f"vins ({len(vins_arr)}) and now_ms ({n}) differ in length")
    horizon_ms = int(round(horizon_days * DAY_MS))
    y = np.zeros(n, dtype=np.int8)
    down = np.zeros(n, dtype=bool)
    censored = np.zeros(n, dtype=bool)
    dtf = np.full(n, np.nan)
    order = np.argsort(vins_arr, kind="stable")
    sorted_vins = vins_arr[order]
    bounds = np.flatnonzero(np.r_[True, sorted_vins[1:] != sorted_vins[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = order[a:b]
        vin = str(sorted_vins[a])
        t = now[rows]
        end = end_ms if isinstance(end_ms, (int, np.integer)) else end_ms.get(vin)
        censored[rows] = True if end is None else t + horizon_ms > int(end)
        tl = index.timeline(vin, component)
        f, s = tl.failures, tl.services
        if f.size == 0:
            continue
        k = np.searchsorted(f, t, side="right")           # index of the next failure after T
        has_next = k < f.size
        nxt = f[np.minimum(k, f.size - 1)]
        y[rows] = (has_next & (nxt <= t + horizon_ms)).astype(np.int8)
        dtf[rows] = np.where(has_next, (nxt - t) / DAY_MS, np.nan)
        has_prev = k > 0
        prev = f[np.maximum(k - 1, 0)]                    # last failure at or before T
        if s.size:
            j = np.searchsorted(s, prev, side="left")      # first service at or after that failure
            has_service = j < s.size
            fixed_at = s[np.minimum(j, s.size - 1)]
            down[rows] = has_prev & has_service & (t < fixed_at)
    return Labels(y=y, usable=~down & ~censored, censored=censored, down=down, days_to_failure=dtf)

