"""The grey-box library's physical priors: the heat balance is a temperature, lags start at rest, bounded networks."""

from __future__ import annotations

import numpy as np
import pytest

from models.inference.fitting import Scaler, input_constants, physical_init
from models.inference.structures import make_structure

CONFIG = {"integrator": True, "lags": 2, "thermal": True, "residual": 8}


def _cell_like(seed: int = 1):
    """A cell-like grey box (current, ambient -> voltage, temperature) with random parameters and unit-based starts."""
    sc = Scaler(np.array([0.0, 15.0]), np.array([2.0, 9.0]), np.array([3.7, 17.0]), np.array([0.14, 9.5]))
    s = make_structure("greybox", CONFIG, nu=2, ny=2)
    rng = np.random.default_rng(seed)
    P = s.init_params(rng, 1.0, 3000.0)
    P = {k: v + rng.normal(0, 0.1, np.shape(v)) if not k.startswith("const_") else v for k, v in P.items()}
    P |= {"const_u_zero": sc.u(np.zeros(2)), "const_flow": np.array([1.0, 0.0]),
          "const_lo": np.array([-2.0, -1.5, -2.0, -1.5]), "const_hi": np.array([2.0, 1.5, 2.0, 1.5])}
    P |= physical_init(sc, ["A", "celsius"], ["V", "celsius"], 6)
    return s, P, sc


def test_unit_based_start_cools_the_temperature_output_to_the_ambient_input():
    s, P, sc = _cell_like()
    assert P["const_th_fixed"].tolist() == [0.0, 1.0]  # voltage is free, temperature follows the node
    for ambient in (0.0, 38.0):  # inside and far outside any training range: the target is linear in the level
        target = sc.u(np.array([0.0, ambient])) @ P["th_e"] + P["th_e0"][0]
        temperature = sc.y_inv(np.array([0.0, target * P["const_th_E"][1] + P["b"][1]]))[1]
        assert temperature == pytest.approx(ambient, abs=1e-9)


def test_initial_state_has_lags_at_rest_and_matches_the_first_output():
    s, P, sc = _cell_like()
    y0 = sc.y(np.array([[3.6, 12.0], [4.1, 35.0]]))
    u0 = sc.u(np.array([[0.0, 10.0], [0.0, 36.0]]))  # no current: an RC branch at rest carries no voltage
    x = s.init_state(P, y0, u0)
    f0 = s.features(P, u0)
    np.testing.assert_allclose(s.output(P, x, f0), y0, atol=1e-6)
    lag_rest = (u0 * (1.0 - P["const_flow"])) @ P["lag_L"]  # steady state of the lags for zero flow
    # the lags barely move (weight 1e-4 in the correction); charge and temperature take it
    np.testing.assert_allclose(x[:, 1:3], lag_rest, atol=0.02)
    assert np.abs(x[:, [0, 3]] - s.encode(P, y0, u0)[:, [0, 3]]).max() > 0.1


def test_residual_network_is_constant_beyond_the_training_range():
    s, P, _ = _cell_like()
    x = np.array([[0.1, 0.0, 0.0, 0.5]])
    res = {}
    for amb in (1.5, 2.5, 6.0):  # normalised ambient: at the edge of training (1.5), then beyond it
        f = s.features(P, np.array([[0.3, amb]]))
        with_res = s.output(P, x, f)
        P0 = P | {"res_W2": np.zeros_like(P["res_W2"])}
        res[amb] = (with_res - s.output(P0, x, f))[0]
    assert np.abs(res[1.5]).max() > 1e-4  # the network does contribute
    np.testing.assert_allclose(res[2.5], res[1.5], atol=1e-12)
    np.testing.assert_allclose(res[6.0], res[1.5], atol=1e-12)


def test_flows_and_levels():
    t = np.arange(400.0)
    current = np.where(t % 100 < 50, 0.0, np.sin(t / 7) * 5)  # rests at zero: a flow
    speed = np.where(t % 100 < 30, 0.0, np.abs(np.sin(t / 30)) * 20)  # stops: a flow that never changes sign
    winter = np.sin(t / 60) * 6  # an ambient crossing 0 °C: still a level, as declared in celsius
    u = [np.stack([current, speed, winter, winter], 1)]
    sc = Scaler.fit(u, [t[:, None]])
    flows = input_constants(sc, u, [t[:, None]], ["A", "m/s", "celsius", ""])["const_flow"]
    assert flows.tolist() == [1.0, 1.0, 0.0, 1.0]  # the undeclared copy changes sign: taken for a flow
