"""The fleet simulator: vectorised state machine + physics, one contract message per vehicle per step.

Modes: PARKED (at the depot, unplugged or charged), AC_CHARGING (plugged in at
the depot), DRIVING (following a cyclic route of EPA cycles) and DC_CHARGING
(mid-shift fast charge). Per step: departures due at the step start begin
their shift; every mode is integrated over ``[t0, t0 + dt]`` (route energy and
distance as exact integral differences, charging capped at the target,
thermal nodes by exact exponential relaxation); shift ends and charge-session
changes are applied; component wear, failures and workshop visits are updated
(``reliability``); the state at ``t0 + dt`` is encoded.

A vehicle whose component failed stays parked at its depot until the repair
or replacement is done (its 12 V battery failing means it never woke up).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.simulation import gps, low_voltage, thermal
from models.simulation.drive_cycles import DIST_M, KEY_ON_S, build_routes, cumulative_at, sample_at, speed_at
from models.simulation.dtc import CODES, MASK_TO_CODES, DtcState
from models.simulation.ev_models import load_ev_models
from models.simulation.powertrain import (ABS_MOTOR_KJ, BATT_KJ, BATT_SQ, MOTOR_LOSS_KJ, RouteEnergy,
                                          charge_taper, dc_thermal_derate, hvac_power_w, open_circuit_voltage,
                                          pack_current, pack_resistance, route_energy)
from models.simulation.regions import REGIONS
from models.simulation.reliability import NEVER_MS, Reliability, StepStress, inverter_channel
from models.simulation.schedule import plan_departures
from models.simulation.telemetry import LV_STATES, TB, TelemetryEncoder
from models.simulation.validation import check_int, check_regions, is_finite_number
from models.simulation.vehicles import SOFTWARE_RELEASES, build_fleet
from models.simulation.weather import load_site

PARKED, AC_CHARGING, DRIVING, DC_CHARGING = 0, 1, 2, 3
DEFAULT_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN_START_MS, MAX_START_MS = 946_684_800_000, 4_070_908_800_000  # 2000-01-01 .. 2099-01-01 (twins accept 2000-2100)
MAX_VEHICLES = 1_000_000
MAX_DT_S = 86_400.0
SNAPSHOT_EVERY = 300
HARD_FLOOR_SOC = 0.06      # below this a driving vehicle heads to a fast charger at once
MIN_DRIVE_SOC = 0.03       # a step never drives the pack below this
AC_CHARGER_EFF = 0.92
INV_DMG = 4               # extra channel of the route energy integrals: inverter cycle damage
RELIABILITY_STREAM = 0x5EED_FA11   # the reliability generator is seeded from (seed, this)
OTA_PROB_PER_SHIFT = 0.02
CATCH_UP_MS = 14 * 3_600_000


class FleetSimulator:
    """Deterministic simulator of ``n_vehicles`` EVs spread round-robin over ``regions``.

    Same arguments and the same sequence of ``step`` calls give byte-identical
    messages. Per-vehicle state arrays (``soc``, ``mode``, ``t_inv`` ...) are
    public for inspection only; do not write to them.
    """

    def __init__(self, n_vehicles: int, seed: int = 0, start_ms: int = DEFAULT_START_MS,
                 regions: Sequence[str] | None = None) -> None:
        n = check_int("n_vehicles", n_vehicles, 1, MAX_VEHICLES)
        seed = check_int("seed", seed, 0, 2**63 - 1)
        self._now = check_int("start_ms", start_ms, MIN_START_MS, MAX_START_MS)
        region_list = check_regions(regions)
        self._rng = np.random.Generator(np.random.PCG64(seed))
        rel_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, RELIABILITY_STREAM])))
        models = load_ev_models()
        self._p = p = build_fleet(self._rng, n, [REGIONS[r] for r in region_list], models)
        self._region_of = dict(zip(p.vins, (p.region_ids[i] for i in p.region_idx)))
        self._sites = [load_site(REGIONS[r].site_id) for r in p.region_ids]
        self._routes = build_routes(int(self._rng.integers(0, 2**62)))
        energy = route_energy(self._routes, models)
        channel = inverter_channel(self._routes, energy)
        self._energy = RouteEnergy(energy.n_models, energy.motor_kw, energy.batt_kw,
                                   np.concatenate([energy.cum, channel.cum], axis=2))
        self._rel = Reliability(rel_rng, p, self._routes, energy, channel, models, self._sites, self._now)
        self._drained = 0
        self._init_state(n)
        tables = {"Vehicle.LowVoltageSystemState": LV_STATES, "Vehicle.Diagnostics.DTCList": MASK_TO_CODES,
                  "Vehicle.Software.Version": p.software_table, "Vehicle.VehicleIdentification.Model": p.model_names,
                  "Vehicle.VehicleIdentification.Variant": p.variant_names}
        self._encoder = TelemetryEncoder(p.vins, tables, SNAPSHOT_EVERY)

    # ------------------------------------------------------------------ public API
    @property
    def vins(self) -> list[str]:
        """VINs in vehicle order (the order of every ``step`` batch)."""
        return list(self._p.vins)

    @property
    def now_ms(self) -> int:
        """Current simulated time, UTC epoch milliseconds."""
        return self._now

    def region_of(self, vin: str) -> str:
        """Region id of a vehicle."""
        try:
            return self._region_of[vin]
        except KeyError:
            raise ValueError(f"unknown vin {vin!r}") from None

    def maintenance_events(self) -> list[dict[str, Any]]:
        """Every workshop record so far, sorted by time: ``vin``, ``component`` (``inverter``,
        ``traction_battery``, ``drive_motor``, ``lv_battery``), ``event`` (``failure``, ``repair``,
        ``replacement``, ``inspection_ok``), ``time`` (ISO 8601 UTC, e.g. ``2026-03-04T10:15:00Z``)
        and ``odometer_km``. A failure is followed by its repair or replacement once that is done."""
        return self._rel.event_dicts(self._p.vins)

    def drain_maintenance_events(self) -> list[dict[str, Any]]:
        """The records added since the previous drain (sorted by time), for streaming to disk.

        Records of one step all lie in that step's interval, so successive drains are in time order.
        """
        out = self._rel.event_dicts(self._p.vins, self._drained)
        self._drained = len(self._rel.events)
        return out

    def fleet_table(self) -> list[dict[str, Any]]:
        """One row per vehicle: ``vin, region, model, variant, in_service_date, home_lat, home_lon``
        (home = the depot it parks at; in-service date as ISO ``YYYY-MM-DD``)."""
        p = self._p
        models = load_ev_models()
        out = []
        for i, vin in enumerate(p.vins):
            m = models[int(p.model_idx[i])]
            day = datetime.datetime.fromtimestamp(int(self._rel.in_service_ms[i]) // 1000,
                                                  tz=datetime.timezone.utc).date()
            out.append({"vin": vin, "region": p.region_ids[int(p.region_idx[i])], "model": m.model,
                        "variant": m.variant, "in_service_date": day.isoformat(),
                        "home_lat": round(float(p.depot_lat[i]), 6), "home_lon": round(float(p.depot_lon[i]), 6)})
        return out

    @property
    def reliability(self) -> Reliability:
        """Component wear state (read-only inspection: ages, damage, strengths, pending repairs)."""
        return self._rel

    def advance(self, dt_s: float) -> None:
        """``step(dt_s)`` without building the messages (for long runs that only need the wear or the log).

        The physics, the random draws and the maintenance log are exactly those of ``step``; the next
        emitted message of a vehicle carries the changes since its previous *emitted* message.
        """
        self._step(dt_s, encode=False)

    def run(self, duration_s: float, rate_hz: float = 1.0) -> Iterator[list[dict[str, Any]]]:
        """Yield ``step(1 / rate_hz)`` batches until ``duration_s`` of simulated time has elapsed.

        Arguments are checked when ``run`` is called, not on the first ``next()``.
        """
        if not is_finite_number(duration_s) or duration_s < 0:
            raise ValueError(f"duration_s must be finite and >= 0, got {duration_s!r}")
        if not is_finite_number(rate_hz) or rate_hz <= 0:
            raise ValueError(f"rate_hz must be finite and > 0, got {rate_hz!r}")
        steps = math.ceil(duration_s * rate_hz - 1e-9)
        return (self.step(1.0 / rate_hz) for _ in range(steps))

    # ------------------------------------------------------------------ state
    def _init_state(self, n: int) -> None:
        p, rng = self._p, self._rng
        t_amb = self._weather(self._now)[0]
        self.soc = rng.uniform(0.45, 0.90, n)
        self.soh = self._rel.soh0.copy()          # from the vehicle's age, duty and climate
        self.odo_km = self._rel.odo0.copy()
        self.mode = np.where(self.soc < p.profile.plug_threshold, AC_CHARGING, PARKED).astype(np.int8)
        self.route = np.zeros(n, dtype=np.int64)
        self.u = np.zeros(n)
        self.u_end = np.zeros(n)
        # Plan from 14 h back so that shifts already under way at start_ms are picked up below.
        self.depart_ms = plan_departures(rng, p.profile, p.timezones, p.region_idx, np.arange(n),
                                         self._now - CATCH_UP_MS)
        self.parked_since = np.full(n, self._now - 3_600_000, dtype=np.int64)
        self.dc_target = np.full(n, 0.8)
        self.east, self.north = np.zeros(n), np.zeros(n)
        self.heading = rng.uniform(-np.pi, np.pi, n)
        self.t_batt = t_amb + rng.normal(0.0, 0.5, n)
        self.t_cool, self.t_motor, self.t_inv = t_amb.copy(), t_amb.copy(), t_amb.copy()
        self.batt_cooling, self.batt_heating = np.zeros(n, bool), np.zeros(n, bool)
        self.btms_w = np.zeros(n)
        self.lv_v = low_voltage.rest_voltage(t_amb, self._rel.lv_wear)
        self.air_noise = np.zeros(n)
        self.sw_idx = p.software_base + (rng.random(n) < 0.3)
        self.dtc = DtcState(n)
        self._wake_v = np.zeros(n)
        self._lv_dtc = np.zeros(n, bool)
        self._catch_up()

    def _catch_up(self) -> None:
        """Put vehicles whose shift is under way at ``start_ms`` on the road, part-way through it."""
        p, rng = self._p, self._rng
        past = np.flatnonzero(self.depart_ms <= self._now)
        if past.size == 0:
            return
        parked_mode = self.mode[past].copy()
        self._start_shifts(past)
        late_s = (self._now - self.depart_ms[past]) / 1000.0
        ongoing = late_s < self.u_end[past] - self.u[past]
        done = past[~ongoing]
        self.mode[done] = parked_mode[~ongoing]
        if done.size:
            self.depart_ms[done] = plan_departures(rng, p.profile, p.timezones, p.region_idx, done, self._now)
        busy = past[ongoing]
        self.u[busy] += late_s[ongoing]
        radius = p.roam_km[busy] * 0.5 * np.sqrt(rng.random(busy.size))
        angle = rng.uniform(-np.pi, np.pi, busy.size)
        self.east[busy], self.north[busy] = radius * np.sin(angle), radius * np.cos(angle)

    def _weather(self, ts_ms: int) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Ambient °C, relative humidity % and GHI W/m² per vehicle at ``ts_ms``."""
        t, rh, ghi = np.array([s.sample(ts_ms) for s in self._sites], dtype=np.float64).T
        idx = self._p.region_idx
        return t[idx], rh[idx], ghi[idx]

    # ------------------------------------------------------------------ transitions
    def _start_shifts(self, idx: NDArray[np.int64]) -> None:
        rng, routes = self._rng, self._routes
        self.route[idx] = route = rng.integers(0, routes.n_routes, size=len(idx))
        start = np.empty(len(idx))
        for r in range(routes.n_routes):
            sel = route == r
            starts = routes.cycle_starts[r]
            start[sel] = starts[rng.integers(0, len(starts), size=int(sel.sum()))]
        target = start + self._p.profile.shift_s[idx] * rng.uniform(0.75, 1.25, len(idx))
        base = np.floor(target / routes.length_s) * routes.length_s
        k = (target - base).astype(np.int64)
        self.u[idx] = start
        self.u_end[idx] = base + routes.next_stop[route, k]
        self.heading[idx] = rng.uniform(-np.pi, np.pi, len(idx))
        self.mode[idx] = DRIVING

    def _end_shifts(self, idx: NDArray[np.int64], t1: int) -> None:
        p, rng = self._p, self._rng
        self.east[idx] = 0.0
        self.north[idx] = 0.0
        plug = self.soc[idx] < p.profile.plug_threshold[idx]
        self.mode[idx] = np.where(plug, AC_CHARGING, PARKED)
        self.parked_since[idx] = t1
        self.depart_ms[idx] = plan_departures(rng, p.profile, p.timezones, p.region_idx, idx, t1)
        ota = (rng.random(len(idx)) < OTA_PROB_PER_SHIFT) & (
            self.sw_idx[idx] < p.software_base[idx] + SOFTWARE_RELEASES - 1)
        self.sw_idx[idx] += ota

    # ------------------------------------------------------------------ step
    def _take_out_of_service(self, idx: NDArray[np.int64], t1: int) -> None:
        """Failed vehicles: a shift under way ends (towed to the depot); no departures until repaired."""
        on_road = idx[(self.mode[idx] == DRIVING) | (self.mode[idx] == DC_CHARGING)]
        if on_road.size:
            self._end_shifts(on_road, t1)
        self.depart_ms[idx] = NEVER_MS

    def step(self, dt_s: float) -> list[dict[str, Any]]:
        """Advance every vehicle by ``dt_s`` seconds; return one message per vehicle (vehicle order).

        ``dt_s`` is rounded to whole milliseconds; every message carries the new
        ``now_ms`` as ``ts`` and describes the state at that instant.
        """
        out = self._step(dt_s, encode=True)
        assert out is not None
        return out

    def _step(self, dt_s: float, encode: bool) -> list[dict[str, Any]] | None:
        if not is_finite_number(dt_s) or not 0 < dt_s <= MAX_DT_S:
            raise ValueError(f"dt_s must be a finite number in (0, {MAX_DT_S:g}], got {dt_s!r}")
        dt_ms = max(1, int(round(dt_s * 1000)))
        dt = dt_ms / 1000.0
        p, rng, routes, en = self._p, self._rng, self._routes, self._energy
        t0, t1 = self._now, self._now + dt_ms
        t_amb, rh, ghi = self._weather(t1)

        # 1. departures due at the step start: the car wakes on its 12 V battery first
        due = np.flatnonzero(((self.mode == PARKED) | (self.mode == AC_CHARGING)) & (self.depart_ms <= t0))
        started = np.zeros(p.n, bool)
        if due.size:
            woke, v_wake, lv_dtc = self._rel.wake(due, t0, t_amb[due], self.odo_km[due])
            self.depart_ms[due[~woke]] = NEVER_MS
            self._wake_v[due] = v_wake
            self._lv_dtc[due] |= lv_dtc
            due = due[woke]
        if due.size:
            self._start_shifts(due)
            started[due] = True

        # 2. integrate driving over the step (exact integral differences along the route)
        mode = self.mode.copy()
        drv, ac, dc = mode == DRIVING, mode == AC_CHARGING, mode == DC_CHARGING
        row = en.row(self.route, p.model_idx)
        u0 = self.u
        u1 = np.where(drv, np.minimum(u0 + dt, self.u_end), u0)
        d_route = cumulative_at(routes.cum, self.route, u1) - cumulative_at(routes.cum, self.route, u0)
        d_energy = cumulative_at(en.cum, row, u1) - cumulative_at(en.cum, row, u0)
        dist_km = d_route[:, DIST_M] / 1000.0
        key_s = d_route[:, KEY_ON_S]
        eff = p.efficiency_factor
        e_trac = d_energy[:, BATT_KJ] * eff
        e_abs = d_energy[:, ABS_MOTOR_KJ]
        e_loss = d_energy[:, MOTOR_LOSS_KJ]
        e_sq = d_energy[:, BATT_SQ] * eff**2
        inv_cycles = d_energy[:, INV_DMG]

        # 3. battery: mean power into the pack, SoC, I²R heat
        ocv = open_circuit_voltage(self.soc, p.ocv_table)
        r_pack = pack_resistance(p.r25_ohm, self.t_batt, self.soh)
        hvac = p.aux_base_w + hvac_power_w(t_amb, p.heat_pump)
        aux = np.where(drv, hvac * key_s / dt, np.where(dc, hvac, np.where(ac, 0.5 * p.aux_base_w, 0.0)))
        aux = aux + self.btms_w
        p_chg = self._charge_power_w(mode, self.soc)
        p_trac = e_trac * 1000.0 / dt
        p_in = np.where(drv, -(p_trac + aux), np.where(ac | dc, p_chg - aux, 0.0))
        i_avg = pack_current(p_in, ocv, r_pack)
        q_ah = p.capacity_kwh * self.soh / 100.0 * 1000.0 / p.nominal_v
        dsoc = i_avg * dt / 3600.0 / q_ah
        # A coarse step must not drive the pack flat: drive only the share of it the charge allows.
        short = drv & (self.soc + dsoc < MIN_DRIVE_SOC)
        if short.any():
            f = np.where(short, np.clip((self.soc - MIN_DRIVE_SOC) / np.where(short, -dsoc, 1.0), 0.0, 1.0), 1.0)
            u1 = u0 + f * (u1 - u0)
            dsoc, dist_km, e_abs, e_loss, p_trac = dsoc * f, dist_km * f, e_abs * f, e_loss * f, p_trac * f
            e_sq, key_s, inv_cycles = e_sq * f, key_s * f, inv_cycles * f
        self.u = u1
        remaining_km = (cumulative_at(routes.cum, self.route, self.u_end)[:, DIST_M]
                        - cumulative_at(routes.cum, self.route, u1)[:, DIST_M]) / 1000.0
        target = np.where(ac, p.profile.ac_target, np.where(dc, self.dc_target, 1.0))
        charging = ac | dc
        room = np.clip((target - self.soc) / np.where(dsoc > 0, dsoc, 1.0), 0.0, 1.0)
        frac = np.where(charging & (dsoc > 0), room, 1.0)
        dsoc = dsoc * frac
        soc0 = self.soc
        self.soc = np.clip(self.soc + dsoc, 0.0, 1.0)
        mean_sq = np.where(drv, e_sq * 1e6 / dt + 2.0 * aux * p_trac + aux * aux, p_in * p_in * frac)
        heat_w = r_pack * mean_sq / (ocv * ocv)

        # 4. end-of-step transitions
        stopped = speed_at(routes, self.route, u1) <= 0.05
        end = np.flatnonzero(drv & (u1 >= self.u_end - 1e-6))
        if end.size:
            self._end_shifts(end, t1)
        go_dc = np.flatnonzero((self.mode == DRIVING) & (((self.soc < p.profile.dc_threshold) & stopped)
                                                           | (self.soc < HARD_FLOOR_SOC)))
        if go_dc.size:
            self.mode[go_dc] = DC_CHARGING
            self.dc_target[go_dc] = rng.uniform(0.75, 0.85, go_dc.size)
        self.mode[(self.mode == DC_CHARGING) & (self.soc >= self.dc_target - 1e-9)] = DRIVING
        self.mode[(self.mode == AC_CHARGING) & (self.soc >= p.profile.ac_target - 1e-9)] = PARKED

        # 5. thermal (inputs averaged over the step)
        t_cool0, t_motor0, t_batt0 = self.t_cool, self.t_motor, self.t_batt
        v_mean = dist_km * 1000.0 / dt
        motor_loss_w = e_loss * 1000.0 / dt
        inv_loss_w = thermal.inverter_loss_w(e_abs / dt)
        self.t_cool = thermal.coolant_step(self.t_cool, t_amb, motor_loss_w + inv_loss_w, v_mean, drv, dt)
        self.t_motor = thermal.motor_step(self.t_motor, self.t_cool, motor_loss_w, drv, dt)
        self.t_inv = thermal.inverter_step(self.t_inv, self.t_cool, inv_loss_w,
                                           p.inverter_rth_scale * self._rel.inverter_rth_factor(), drv, dt)
        bt = thermal.battery_step(self.t_batt, t_amb, heat_w, p.batt_c_j_per_k, p.batt_g_w_per_k, p.batt_cool_g,
                                  v_mean, drv | charging, self.batt_cooling, self.batt_heating, dt)
        self.t_batt, self.btms_w, self.batt_cooling, self.batt_heating = bt.temp_c, bt.btms_w, bt.cooling, bt.heating

        # 6. position, odometer, 12 V system, diagnostics
        self.east, self.north, self.heading = gps.move(self.east, self.north, self.heading, dist_km, remaining_km,
                                                       p.roam_km, rng.standard_normal(p.n))
        odo0 = self.odo_km
        self.odo_km = self.odo_km + dist_km

        # 7. component wear (SoH fade included), failures, repairs and routine services
        energised = np.where(drv, key_s, np.where(charging, frac * dt, 0.0))
        stress = StepStress(
            t0_ms=t0, t1_ms=t1, dt_s=dt, inv_cycles=inv_cycles, t_cool0=t_cool0, t_cool1=self.t_cool,
            energised_s=energised, t_amb=t_amb, rh=rh, t_batt0=t_batt0, t_batt1=self.t_batt, soc0=soc0,
            soc1=self.soc, charging=charging, dc_pack_eq=np.where(dc, np.maximum(dsoc, 0.0), 0.0),
            t_motor0=t_motor0, t_motor1=self.t_motor, keyon_s=key_s, odo0=odo0, odo1=self.odo_km,
            parked=(self.mode == PARKED) | (self.mode == AC_CHARGING))
        outcome = self._rel.step(stress, self.soh)
        self.soh = outcome.soh
        if outcome.stopped.size:
            self._take_out_of_service(outcome.stopped, t1)
        if outcome.returned.size:
            self.depart_ms[outcome.returned] = plan_departures(rng, p.profile, p.timezones, p.region_idx,
                                                               outcome.returned, t1)
        self._now = t1
        return self._emit(t1, t_amb, rh, ghi, started, dt, encode)

    def _charge_power_w(self, mode: NDArray[np.int8], soc: NDArray[np.float64]) -> NDArray[np.float64]:
        p = self._p
        ac_w = np.minimum(p.profile.evse_kw, p.ac_kw) * 1000.0 * AC_CHARGER_EFF * charge_taper(soc, dc=False)
        dc_w = (np.minimum(p.profile.dc_charger_kw, p.dc_max_kw) * 1000.0 * charge_taper(soc, dc=True)
                * dc_thermal_derate(self.t_batt))
        return np.where(mode == AC_CHARGING, ac_w, np.where(mode == DC_CHARGING, dc_w, 0.0))

    def _emit(self, t1: int, t_amb: NDArray[np.float64], rh: NDArray[np.float64], ghi: NDArray[np.float64],
              started: NDArray[np.bool_], dt: float, encode: bool = True) -> list[dict[str, Any]] | None:
        """Instantaneous signals at ``t1`` in the post-transition modes, encoded as messages."""
        p, routes, en, rng = self._p, self._routes, self._energy, self._rng
        mode = self.mode
        drv, ac, dc = mode == DRIVING, mode == AC_CHARGING, mode == DC_CHARGING
        u_last = self.u - 1e-6                    # the route second that ends at u
        row = en.row(self.route, p.model_idx)
        key_on = drv & sample_at(routes.key_on, self.route, u_last)
        speed = np.where(drv, speed_at(routes, self.route, self.u), 0.0)
        accel = np.where(drv, sample_at(routes.accel_mps2, self.route, u_last), 0.0)
        motor_kw = np.where(key_on, sample_at(en.motor_kw, row, u_last), 0.0)
        batt_kw = np.where(key_on, sample_at(en.batt_kw, row, u_last) * p.efficiency_factor, 0.0)

        hvac = p.aux_base_w + hvac_power_w(t_amb, p.heat_pump)
        aux = np.where(key_on | dc, hvac, np.where(ac, 0.5 * p.aux_base_w, 0.0)) + self.btms_w
        p_in = np.where(drv, -(batt_kw * 1000.0 + aux), np.where(ac | dc, self._charge_power_w(mode, self.soc) - aux,
                                                                  0.0))
        ocv = open_circuit_voltage(self.soc, p.ocv_table)
        r_pack = pack_resistance(p.r25_ohm, self.t_batt, self.soh)
        current = pack_current(p_in, ocv, r_pack)
        voltage = ocv + current * r_pack
        is_charging = (ac | dc) & (current > 0)

        awake = key_on | ac | dc
        rel = self._rel
        self.lv_v = low_voltage.voltage_step(self.lv_v, t_amb, rel.lv_wear, awake, dt, rel.lv_dead)
        # the START message reports the wake-up dip (the lowest voltage of the wake, before the DC-DC takes over)
        lv_out = np.where(started, np.minimum(self._wake_v, self.lv_v), self.lv_v)
        lv_state = low_voltage.system_state(started, key_on, drv, dc, t1 - self.parked_since)

        decay = math.exp(-dt / 300.0)
        self.air_noise = self.air_noise * decay + 0.25 * math.sqrt(1.0 - decay * decay) * rng.standard_normal(p.n)
        sun_soak = np.minimum(ghi / 250.0, 4.0) * (1.0 - np.minimum(speed / 10.0, 1.0))
        air = t_amb + p.sensor_bias_c + self.air_noise + sun_soak

        factor = self.dtc.condition_factor(self.soh, self.t_inv, rh, self.soc) * rel.dtc_boost(len(CODES), CODES)
        force = np.zeros(factor.shape, bool)
        force[:, CODES.index("P0562")] = self._lv_dtc
        self._lv_dtc[:] = False
        dtc_mask = self.dtc.step(rng, t1, dt, awake, factor, force)
        lat, lon = gps.to_lat_lon(p.depot_lat, p.depot_lon, self.east, self.north)
        spread = (p.cell_imbalance_k * rel.battery_imbalance_factor() * (1.0 + (100.0 - self.soh) / 10.0)
                  + np.minimum(0.0008 * np.abs(current) ** 2 * r_pack, 8.0))
        frame = {
            "Vehicle.Speed": speed * 3.6,
            "Vehicle.CurrentLocation.Latitude": lat,
            "Vehicle.CurrentLocation.Longitude": lon,
            "Vehicle.TraveledDistance": self.odo_km,
            "Vehicle.Acceleration.Longitudinal": accel,
            f"{TB}.StateOfCharge.Current": self.soc * 100.0,
            f"{TB}.StateOfHealth": self.soh,
            f"{TB}.CurrentVoltage": voltage,
            f"{TB}.CurrentCurrent": current,
            f"{TB}.Temperature.Average": self.t_batt,
            f"{TB}.Temperature.Max": self.t_batt + spread,
            f"{TB}.Charging.IsCharging": is_charging,
            f"{TB}.Charging.ChargeCurrent.DC": np.where(dc & is_charging, current, 0.0),
            "Vehicle.Powertrain.ElectricMotor.Temperature": self.t_motor,
            "Vehicle.Powertrain.ElectricMotor.EngineCoolant.Temperature": self.t_cool,
            "Vehicle.Powertrain.ElectricMotor.Power": motor_kw,
            "Vehicle.Exterior.AirTemperature": np.round(air * 2.0) / 2.0,
            "Vehicle.LowVoltageBattery.CurrentVoltage": lv_out,
            "Vehicle.LowVoltageSystemState": lv_state,
            "Vehicle.Diagnostics.DTCList": dtc_mask,
            "Vehicle.Powertrain.TractionInverter.Temperature": self.t_inv,
            "Vehicle.Software.Version": self.sw_idx,
            "Vehicle.VehicleIdentification.Model": p.model_idx,
            "Vehicle.VehicleIdentification.Variant": p.model_idx,
        }
        if not encode:
            return None
        return self._encoder.encode(t1, frame)
