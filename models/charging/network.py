"""A site's electrical tree (transformers, panels, feeders) and its per-line current limits as linear rows.

Chargers hang on nodes; nodes hang on parents up to the root. A charger is
connected line-to-line on a phase pair (``AB``, ``BC``, ``CA``: pilot current I
at the pair's voltage angle 30°, -90°, 150°; line X carries +I, line Y carries
-I) or three-phase (``ABC``: line currents I at 0°, -120°, 120°), the
convention of ACN-Sim's Caltech network. A node's line currents are the phasor
sums of what hangs below it; a transformer passes its secondary currents up
scaled by its turns ratio (``delta-wye``: primary A = (a - c) / n with
n = primary_v / (voltage_v / sqrt 3); ``wye-wye``: x voltage_v / primary_v).

Limits: ``limit_a`` on every line of a node; ``kva`` gives kVA*1000/(sqrt 3 * V)
per line on the node's side (``voltage_v``) and, for a transformer with
``primary_v``, on its primary lines too.

Linear inner approximation: the true constraint is |sum_i w_i I_i| <= c
(complex w_i, pilots I_i >= 0), a disc. All w_i I_i lie in the cone of the
w_i's directions; if that cone is narrower than 180° it is cut into chords of
at most ``max_deg`` degrees and each chord becomes one row
Re(e^{-j theta} sum w_i I_i) <= c cos(delta / 2): the feasible set is the
polygon inscribed in the disc, so every plan that meets the rows meets the
true limit (safe), and at worst cos(max_deg / 2) of a line's current is
given away (0.86 % at 15°; exact when all loads on a line are in phase, e.g.
a panel on one phase pair). Wider cones use a regular inscribed polygon.

>>> from models.charging.types import Charger, Site
>>> site = Site("s", "UTC", 100.0, (Charger("c1", 7.0, phases="AB", voltage_v=208.0, panel="p"),
...                                 Charger("c2", 7.0, phases="CA", voltage_v=208.0, panel="p")),
...             nodes=(Node("p", limit_a=50.0),))
>>> net = compile_network(site)
>>> [round(float(x), 1) for x in line_currents(net, np.array([30.0, 30.0]))[:3]]   # |I_a| = sqrt 3 * 30
[52.0, 30.0, 30.0]
>>> bool(np.all(net.rows @ np.array([30.0, 30.0]) <= net.bound)), bool(np.all(net.rows @ np.array([28.0, 28.0]) <= net.bound))
(False, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from models.charging.errors import InfeasibleNetwork

if TYPE_CHECKING:
    from models.charging.types import Charger, Site

__all__ = ["Node", "Network", "compile_network", "check_tree", "line_currents", "kw_per_amp", "PHASES"]

PHASES = ("AB", "BC", "CA", "ABC")
KINDS = ("transformer", "panel", "feeder")
CONNECTIONS = ("delta-wye", "wye-wye")
_LINES = "abc"
_SQ3 = math.sqrt(3.0)


def _positive_opt(name: str, value: float | None, node: str) -> None:
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InfeasibleNetwork(f"Node {node!r}.{name} must be > 0, got {value!r}")


class Node(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A transformer, panel or feeder: its parent (None = root), lines present and limits (see module doc)."""

    id: str
    kind: str = "panel"
    parent: str | None = None
    phases: str = "ABC"
    limit_a: float | None = None
    kva: float | None = None
    voltage_v: float | None = None
    primary_v: float | None = None
    connection: str = "delta-wye"

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise InfeasibleNetwork(f"Node.id must be a non-empty string, got {self.id!r}")
        if self.kind not in KINDS:
            raise InfeasibleNetwork(f"Node {self.id!r}.kind must be one of {KINDS}, got {self.kind!r}")
        if self.phases not in PHASES:
            raise InfeasibleNetwork(f"Node {self.id!r}.phases must be one of {PHASES}, got {self.phases!r}")
        if self.connection not in CONNECTIONS:
            raise InfeasibleNetwork(f"Node {self.id!r}.connection must be one of {CONNECTIONS}, "
                                    f"got {self.connection!r}")
        for name in ("limit_a", "kva", "voltage_v", "primary_v"):
            _positive_opt(name, getattr(self, name), self.id)
        if self.kva is not None and self.voltage_v is None:
            raise InfeasibleNetwork(f"Node {self.id!r}.kva needs voltage_v (line-to-line volts on its load side)")
        if self.kind == "transformer" and self.parent is not None and (self.primary_v is None or self.voltage_v is None):
            raise InfeasibleNetwork(f"Node {self.id!r}: a transformer under {self.parent!r} needs primary_v and "
                                    f"voltage_v to refer its currents to the parent")
        if self.primary_v is not None and self.kind != "transformer":
            raise InfeasibleNetwork(f"Node {self.id!r}.primary_v is only for transformers, kind is {self.kind!r}")


def _pair_lines(phases: str) -> np.ndarray:
    """Line currents (a, b, c) per amp of pilot, as phasors."""
    out = np.zeros(3, dtype=complex)
    if phases == "ABC":
        return np.exp(1j * np.radians([0.0, -120.0, 120.0]))
    w = np.exp(1j * math.radians({"AB": 30.0, "BC": -90.0, "CA": 150.0}[phases]))
    out[_LINES.index(phases[0].lower())] += w
    out[_LINES.index(phases[1].lower())] -= w
    return out


def _voltage(site: Site, charger: Charger) -> float | None:
    if charger.voltage_v is not None:
        return charger.voltage_v
    nodes = {n.id: n for n in site.nodes}
    node = nodes.get(charger.panel) if charger.panel else None
    while node is not None:
        if node.voltage_v is not None:
            return node.voltage_v
        node = nodes.get(node.parent) if node.parent else None
    return None


def kw_per_amp(site: Site, charger: Charger) -> float:
    """kW drawn per amp of pilot: V/1000 on a phase pair, sqrt 3 * V/1000 three-phase."""
    v = _voltage(site, charger)
    if v is None or charger.phases is None:
        raise InfeasibleNetwork(f"charger {charger.id!r} of site {site.id!r} has no phases/voltage_v")
    return (_SQ3 if charger.phases == "ABC" else 1.0) * v / 1000.0


def check_tree(site: Site) -> None:
    """Reject a tree that cannot exist, naming the element (InfeasibleNetwork)."""
    nodes = {}
    for n in site.nodes:
        if n.id in nodes:
            raise InfeasibleNetwork(f"site {site.id!r}: node id {n.id!r} appears twice")
        nodes[n.id] = n
    for n in site.nodes:
        seen = {n.id}
        cur = n
        while cur.parent is not None:
            parent = nodes.get(cur.parent)
            if parent is None:
                raise InfeasibleNetwork(f"site {site.id!r}: node {cur.id!r} has parent {cur.parent!r}, "
                                        f"which is not a node of the site")
            if parent.id in seen:
                raise InfeasibleNetwork(f"site {site.id!r}: node {n.id!r} is in a cycle through {parent.id!r}")
            if not set(cur.phases) <= set(parent.phases):
                raise InfeasibleNetwork(f"site {site.id!r}: node {cur.id!r} uses phases {cur.phases!r} but its "
                                        f"parent {parent.id!r} has only {parent.phases!r}")
            seen.add(parent.id)
            cur = parent
    wired = [c for c in site.chargers if c.panel is not None or c.phases is not None]
    if not site.nodes:
        if any(c.panel is not None for c in site.chargers):
            c = next(c for c in site.chargers if c.panel is not None)
            raise InfeasibleNetwork(f"site {site.id!r}: charger {c.id!r} is on panel {c.panel!r} but the site "
                                    f"has no nodes")
        return
    if len(wired) != len(site.chargers):
        c = next(c for c in site.chargers if c.panel is None or c.phases is None)
        raise InfeasibleNetwork(f"site {site.id!r}: charger {c.id!r} needs a panel and phases (the site has an "
                                f"electrical tree)")
    for c in site.chargers:
        node = nodes.get(c.panel)  # type: ignore[arg-type]
        if node is None:
            raise InfeasibleNetwork(f"site {site.id!r}: charger {c.id!r} is on panel {c.panel!r}, which is not a "
                                    f"node of the site")
        if not set(c.phases) <= set(node.phases):  # type: ignore[arg-type]
            raise InfeasibleNetwork(f"site {site.id!r}: charger {c.id!r} uses phases {c.phases!r} but node "
                                    f"{node.id!r} has only {node.phases!r}")
        if _voltage(site, c) is None:
            raise InfeasibleNetwork(f"site {site.id!r}: charger {c.id!r} has no voltage_v and no node above it "
                                    f"gives one")


@dataclass(frozen=True)
class Network:
    """A site's limits as rows over charger groups (same node, same phases): ``rows @ amps <= bound``."""

    group_of: dict[str, int]  # charger id -> group
    kw_per_amp: dict[str, float]  # charger id -> kW per pilot amp
    rows: np.ndarray  # [R, G] linear inner approximation (amps)
    bound: np.ndarray  # [R]
    row_element: tuple[str, ...]  # [R] "node line" each row belongs to
    exact: np.ndarray  # [L, G] complex line-current coefficients
    limit: np.ndarray  # [L] amps
    names: tuple[str, ...]  # [L] "node line"


def _facets(w: np.ndarray, c: float, max_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows F [K, G] and bounds [K] of the inscribed polygon of |w . I| <= c (I >= 0); see module doc."""
    nz = np.abs(w) > 1e-12
    ang = np.sort(np.mod(np.angle(w[nz]), 2 * np.pi))
    gaps = np.diff(np.r_[ang, ang[0] + 2 * np.pi])
    i = int(np.argmax(gaps))
    width = 2 * np.pi - gaps[i]
    step = math.radians(max_deg)
    if width < np.pi - 1e-9:
        m = max(1, math.ceil(width / step - 1e-9))
        normals = ang[(i + 1) % ang.size] + width * (np.arange(m) + 0.5) / m
        offset = c * math.cos(width / (2 * m))
    else:
        k = max(3, math.ceil(2 * np.pi / step))
        normals = 2 * np.pi * np.arange(k) / k
        offset = c * math.cos(np.pi / k)
    f = np.real(w[None, :] * np.exp(-1j * normals)[:, None])
    f[np.abs(f) < 1e-12] = 0.0
    keep = (f > 0).any(axis=1)  # a row with no positive coefficient can never bind
    return f[keep], np.full(int(keep.sum()), offset)


def compile_network(site: Site, max_deg: float = 15.0) -> Network | None:
    """The rows of ``site``'s tree (None without nodes); ``max_deg`` = widest chord (see module doc)."""
    if not site.nodes:
        return None
    keys = sorted({(c.panel, c.phases) for c in site.chargers})
    gidx = {k: i for i, k in enumerate(keys)}
    n_g = len(keys)
    nodes = {n.id: n for n in site.nodes}
    children: dict[str | None, list[str]] = {}
    for n in site.nodes:
        children.setdefault(n.parent, []).append(n.id)
    exact, limit, names = [], [], []

    def lines(nid: str) -> np.ndarray:  # [3, G] line currents at node nid per group amp
        out = np.zeros((3, n_g), dtype=complex)
        for (panel, phases), g in gidx.items():
            if panel == nid:
                out[:, g] += _pair_lines(phases)
        for ch in children.get(nid, []):
            out += up(ch)
        n = nodes[nid]
        lim = [x for x in (n.limit_a, n.kva * 1000 / (_SQ3 * n.voltage_v) if n.kva and n.voltage_v else None)
               if x is not None]
        for j in range(3):
            if lim and np.abs(out[j]).max() > 1e-12:
                exact.append(out[j].copy()), limit.append(min(lim)), names.append(f"{nid} line {_LINES[j]}")
        return out

    def up(nid: str) -> np.ndarray:  # currents of nid as seen by its parent
        s = lines(nid)
        n = nodes[nid]
        if n.kind != "transformer" or n.primary_v is None:
            return s
        assert n.voltage_v is not None
        if n.connection == "delta-wye":
            p = (s - s[[2, 0, 1]]) / (n.primary_v / (n.voltage_v / _SQ3))
        else:
            p = s * (n.voltage_v / n.primary_v)
        if n.kva is not None:
            for j in range(3):
                if np.abs(p[j]).max() > 1e-12:
                    exact.append(p[j].copy()), limit.append(n.kva * 1000 / (_SQ3 * n.primary_v))
                    names.append(f"{nid} primary line {_LINES[j]}")
        return p

    for root in children.get(None, []):
        up(root)
    rows, bound, owner = [], [], []
    for w, c, name in zip(exact, limit, names):
        f, b = _facets(w, c, max_deg)
        rows.append(f), bound.append(b), owner.extend([name] * len(b))
    return Network(
        group_of={c.id: gidx[(c.panel, c.phases)] for c in site.chargers},
        kw_per_amp={c.id: kw_per_amp(site, c) for c in site.chargers},
        rows=np.vstack(rows) if rows else np.zeros((0, n_g)), bound=np.concatenate(bound) if bound else np.zeros(0),
        row_element=tuple(owner), exact=np.array(exact).reshape(len(exact), n_g), limit=np.array(limit),
        names=tuple(names))


def line_currents(net: Network, group_amps: np.ndarray) -> np.ndarray:
    """True current magnitude (A) of every limited line for per-group pilot amps [G] (or [G, T])."""
    return np.abs(net.exact @ group_amps)
