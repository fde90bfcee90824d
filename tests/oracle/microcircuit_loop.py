"""The tests' oracle: the independent reference that the backends are held to. A plain
numpy transcription of the dendritic cortical microcircuit (Sacramento et al. 2018) with
Latent-Equilibrium prospective coding, step for step the discrete-time scheme of
docs/equations.md, written from that page and not from the backends' code
(tests/test_backends_vs_numpy.py holds Brian2 and torch to it; tests/test_numpy_loop.py
checks it against closed forms and a literal transcription of the scheme). The speed
benchmark (benchmarks/microcircuit_steps.py) also measures it.

Vectorised over neurons (matrix products), looping over time steps in Python.

One step n -> (t_n = n dt, sample p = n // steps_per_sample):

1. projections read the values stored at the end of step n-1:
   v_bas,l = W_l r_{l-1};  v_api,l = B_l r_{l+1} + BPI_l rI_l  (B_l = W_{l+1}^T in "bp");
   v_den,l = WIP_l r_l;  interneuron nudging potential = stored u_breve_{l+1}.
2. Euler step of every soma with these inputs (the apical coupling sees v_api + xi(n-1)),
   gates of sample p; the OU noise advances to xi(n).
3. u_eff (v_api + xi(n)) -> u_breve (u_eff, or the new u without prospective coding),
   r = phi(u_breve).
4. plasticity (gate lambda(p)) with the new postsynaptic quantities (noise-free v_api,
   xi(n)) and the stored presynaptic rates and high-passed rates of step n-1.
5. store r~(n) = r~(n-1) + (r(n) - r(n-1)) - dt/tau_hp r~(n-1), r(n), u_breve(n); the
   input population stores x[p].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LoopParams", "simulate", "from_microcircuit", "activation", "ACTIVATIONS"]


# ----------------------------------------------------------------------------------
# activations, written to ``out`` (the formulas of docs/equations.md, "The models", literally)
# ----------------------------------------------------------------------------------
def _logistic(x, out):
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.divide(1.0, out, out=out)
    return out


def _hard_sigmoid(x, out):
    np.divide(x, 6.0, out=out)
    out += 0.5
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _relu(x, out):
    return np.maximum(x, 0.0, out=out)


def _soft_relu(x, out):
    np.exp(x, out=out)
    out += 1.0
    np.log(out, out=out)
    return out


def _tanh(x, out):
    return np.tanh(x, out=out)


def _linear(x, out):
    np.copyto(out, x)
    return out


ACTIVATIONS = {
    "logistic": _logistic,
    "sigmoid": _logistic,
    "hard_sigmoid": _hard_sigmoid,
    "relu": _relu,
    "soft_relu": _soft_relu,
    "tanh": _tanh,
    "linear": _linear,
}


def activation(name: str):
    """Return phi(x, out) for an activation name."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}") from None


def _euler(u, u_eff, k, tmp):
    """u(n) = u(n-1) + dt g_sum (u_eff - u(n-1)), with k = dt g_sum."""
    np.subtract(u_eff, u, out=tmp)
    tmp *= k
    u += tmp


def _rate(u, u_eff, prospective, phi, r_out):
    """u_breve = u_eff (prospective coding) or the new u, left in u_eff; r = phi(u_breve)."""
    if not prospective:
        np.copyto(u_eff, u)
    phi(u_eff, r_out)


# ----------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------
@dataclass
class LoopParams:
    layers: list[int]
    dt: float = 0.01
    t_pres: float = 1.0
    g_l: float = 0.03
    g_bas: float = 0.1
    g_api: float = 0.06
    g_den: float = 0.1
    g_nI: float = 0.06
    g_tgt: float = 0.06
    activation: str = "logistic"
    prospective: bool = True
    feedback: str = "bp"  # "bp" (B_l = W_{l+1}^T at every use), "fa" (B fixed) or "pal" (B learned)
    eta_fw: list[float] | None = None  # one per pyramidal layer l = 1..N (None: zeros)
    eta_ip: list[float] | None = None  # one per hidden layer l = 1..N-1 (None: zeros)
    eta_pi: list[float] | None = None  # one per hidden layer l = 1..N-1 (None: zeros)
    tau_lo: float = 0.0  # low-pass of the forward update; 0: none
    sigma: float = 0.0  # OU noise on the hidden apical compartments
    tau_xi: float = 0.1
    eta_bw: list[float] | None = None  # "pal": one per hidden layer (None: zeros)
    alpha: list[float] | None = None  # "pal": decay of B, one per hidden layer
    tau_hp: float = 0.1  # "pal": high-pass filter of the rates of layers 2..N

    @property
    def steps_per_sample(self) -> int:
        return int(round(self.t_pres / self.dt))


def _per_layer(value, n, name):
    if value is None:
        return [0.0] * n
    if np.isscalar(value):
        return [float(value)] * n
    value = [float(v) for v in value]
    if len(value) != n:
        raise ValueError(f"{name} needs {n} values, got {len(value)}")
    return value


# ----------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------
def simulate(
    params: LoopParams,
    weights: dict,
    x: np.ndarray,
    u_tgt: np.ndarray | None,
    target_on: np.ndarray,
    learn: np.ndarray,
    record_every: int = 0,
    seed: int = 0,
    noise_w=None,
) -> dict:
    """Run the microcircuit for len(x) samples of steps_per_sample steps each.

    weights: {"W": [W_1..W_N], "B": [B_1..B_{N-1}], "WIP": [WIP_1..], "BPI": [BPI_1..]}
        (copied; "B" may be omitted or None in "bp" mode).
    x: (n_samples, n_0); u_tgt: (n_samples, n_N) or None; target_on, learn: (n_samples,).
    noise_w: optional list (one per hidden layer) of (n_steps, n_l) standard normals;
        otherwise, if sigma > 0, drawn from np.random.default_rng(seed), for each step
        one row of sum_l n_l numbers (hidden layers concatenated in order l = 1..N-1).

    Returns a dict:
        "weights": {"W", "B", "WIP", "BPI"} final (B = W_{l+1}^T in "bp" mode);
        "u", "u_breve", "r": lists over pyramidal layers l = 1..N (final state);
        "u_I", "u_breve_I", "r_I": lists over interneuron populations l = 1..N-1;
        "r_0": the input population's stored rate; "xi": final noise per hidden layer;
        "v_api": final apical potential (noise-free) per hidden layer;
        "n_steps", "steps_per_sample";
        "rec" (only if record_every > 0): {"step": (n_rec,), "u_breve": [(n_rec, n_l)],
            "r": [(n_rec, n_l)], "v_api", "xi": [(n_rec, n_l)] per hidden layer,
            "W": [(n_rec, n_l, n_{l-1})]}, taken at the end of steps
            record_every-1, 2 record_every-1, ...
    """
    P = params
    sizes = [int(s) for s in P.layers]
    N = len(sizes) - 1
    if N < 1:
        raise ValueError("need at least an input and an output layer")
    H = N - 1  # hidden layers / interneuron populations
    if P.feedback not in ("bp", "fa", "pal"):
        raise ValueError(f"feedback must be 'bp', 'fa' or 'pal', got {P.feedback!r}")
    bp, pal = P.feedback == "bp", P.feedback == "pal"
    phi = activation(P.activation)
    dt = float(P.dt)
    sps = P.steps_per_sample
    if sps < 1:
        raise ValueError("t_pres must be at least dt")

    eta_fw = _per_layer(P.eta_fw, N, "eta_fw")
    eta_ip = _per_layer(P.eta_ip, H, "eta_ip")
    eta_pi = _per_layer(P.eta_pi, H, "eta_pi")
    eta_bw = _per_layer(P.eta_bw, H, "eta_bw")
    alpha = _per_layer(P.alpha, H, "alpha")

    # ---- schedule ----
    x = np.array(x, dtype=np.float64, copy=True)
    if x.ndim != 2 or x.shape[1] != sizes[0]:
        raise ValueError(f"x must have shape (n_samples, {sizes[0]}), got {x.shape}")
    n_samples = x.shape[0]
    target_on = np.asarray(target_on, dtype=np.float64).reshape(n_samples)
    learn = np.asarray(learn, dtype=np.float64).reshape(n_samples)
    if u_tgt is None:
        if np.any(target_on != 0):
            raise ValueError("target_on is set but u_tgt is None")
        u_tgt = np.zeros((n_samples, sizes[N]))
    else:
        u_tgt = np.array(u_tgt, dtype=np.float64, copy=True).reshape(n_samples, sizes[N])
    n_steps = n_samples * sps

    # ---- weights, 1-based lists (index 0 unused) ----
    def _copy_list(key, count, shape_of):
        src = weights.get(key)
        if src is None:
            return None
        if len(src) != count:
            raise ValueError(f"weights[{key!r}] needs {count} matrices, got {len(src)}")
        out = [None]
        for l in range(1, count + 1):
            m = np.array(src[l - 1], dtype=np.float64, copy=True)
            if m.shape != shape_of(l):
                raise ValueError(f"{key}_{l} has shape {m.shape}, expected {shape_of(l)}")
            out.append(m)
        return out

    W = _copy_list("W", N, lambda l: (sizes[l], sizes[l - 1]))
    if W is None:
        raise ValueError("weights['W'] is required")
    WIP = _copy_list("WIP", H, lambda l: (sizes[l + 1], sizes[l])) if H else [None]
    BPI = _copy_list("BPI", H, lambda l: (sizes[l], sizes[l + 1])) if H else [None]
    if H and (WIP is None or BPI is None):
        raise ValueError("weights['WIP'] and weights['BPI'] are required with hidden layers")
    if bp:
        B = None
    else:
        B = _copy_list("B", H, lambda l: (sizes[l], sizes[l + 1])) if H else [None]
        if H and B is None:
            raise ValueError("weights['B'] is required in 'fa' and 'pal' modes")

    # ---- constants ----
    g_l, g_bas, g_api, g_den, g_nI, g_tgt = P.g_l, P.g_bas, P.g_api, P.g_den, P.g_nI, P.g_tgt
    gs_h = g_l + g_bas + g_api  # hidden pyramid (no nudging)
    cb_h, ca_h, k_h = g_bas / gs_h, g_api / gs_h, dt * gs_h
    gs_I = g_l + g_den + g_nI  # interneuron (nudging always on)
    cd_I, cn_I, k_I = g_den / gs_I, g_nI / gs_I, dt * gs_I
    vh_h = g_bas / (g_l + g_bas + g_api)  # dendritic predictions
    vh_o = g_bas / (g_l + g_bas)
    vh_I = g_den / (g_l + g_den)
    prospective = bool(P.prospective)
    tau_lo = float(P.tau_lo)
    lowpass = tau_lo > 0.0
    sigma, tau_xi = float(P.sigma), float(P.tau_xi)
    noisy = sigma > 0.0 and H > 0
    xi_decay = 1.0 - dt / tau_xi
    xi_gain = sigma * np.sqrt(dt / tau_xi) if noisy else 0.0

    # ---- state and buffers ----
    z = lambda n: np.zeros(n)  # noqa: E731
    r0 = phi(np.zeros(1), np.empty(1))[0]  # phi(0)
    u = [None] + [z(sizes[l]) for l in range(1, N + 1)]
    ub_a = [None] + [z(sizes[l]) for l in range(1, N + 1)]  # double buffers: prev / new
    ub_b = [None] + [z(sizes[l]) for l in range(1, N + 1)]
    r_a = [x[0]] + [np.full(sizes[l], r0) for l in range(1, N + 1)]
    r_b = [x[0]] + [z(sizes[l]) for l in range(1, N + 1)]
    uI = [None] + [z(sizes[l + 1]) for l in range(1, H + 1)]
    ubI_a = [None] + [z(sizes[l + 1]) for l in range(1, H + 1)]
    ubI_b = [None] + [z(sizes[l + 1]) for l in range(1, H + 1)]
    rI_a = [None] + [np.full(sizes[l + 1], r0) for l in range(1, H + 1)]
    rI_b = [None] + [z(sizes[l + 1]) for l in range(1, H + 1)]
    xi = [None] + [z(sizes[l]) for l in range(1, H + 1)]
    hp = [None] + [z(sizes[l]) for l in range(1, N + 1)]  # high-passed rates (pal)
    hp_decay = 1.0 - dt / P.tau_hp
    dB = [None] + [np.zeros_like(B[l]) for l in range(1, H + 1)] if pal else None

    vbas = [None] + [z(sizes[l]) for l in range(1, N + 1)]
    vapi = [None] + [z(sizes[l]) for l in range(1, H + 1)]
    vden = [None] + [z(sizes[l + 1]) for l in range(1, H + 1)]
    tmp = [None] + [z(sizes[l]) for l in range(1, N + 1)]  # per pyramidal layer
    tmpI = [None] + [z(sizes[l + 1]) for l in range(1, H + 1)]
    ephi = [None] + [z(sizes[l]) for l in range(1, N + 1)]  # phi(vhat) / error
    ephiI = [None] + [z(sizes[l + 1]) for l in range(1, H + 1)]
    dW = [None] + [np.zeros_like(W[l]) for l in range(1, N + 1)]
    dWIP = [None] + [np.zeros_like(WIP[l]) for l in range(1, H + 1)]
    dBPI = [None] + [np.zeros_like(BPI[l]) for l in range(1, H + 1)]
    M = [None] + [np.zeros_like(W[l]) for l in range(1, N + 1)] if lowpass else None
    M_live = [False] * (N + 1)  # M still nonzero (once fed, it only decays)

    # ---- noise source ----
    if noisy:
        if noise_w is not None:
            if len(noise_w) != H:
                raise ValueError(f"noise_w needs {H} arrays (one per hidden layer)")
            noise_src = [None] + [np.asarray(noise_w[l - 1], dtype=np.float64) for l in range(1, H + 1)]
            for l in range(1, H + 1):
                if noise_src[l].shape[0] < n_steps or noise_src[l][0].size != sizes[l]:
                    raise ValueError(f"noise_w[{l - 1}] must have shape ({n_steps}, {sizes[l]})")
            rng = None
        else:
            rng = np.random.default_rng(seed)
            offs = np.cumsum([0] + [sizes[l] for l in range(1, H + 1)])
            chunk = max(1, min(n_steps, 4096))
            noise_src = None
        noise_row = [None] * (H + 1)
        chunk_buf = None
        chunk_start = -1

    # ---- recording ----
    n_rec = n_steps // record_every if record_every > 0 else 0
    if n_rec:
        rec = {
            "step": np.arange(1, n_rec + 1) * record_every - 1,
            "u_breve": [np.empty((n_rec, sizes[l])) for l in range(1, N + 1)],
            "r": [np.empty((n_rec, sizes[l])) for l in range(1, N + 1)],
            "v_api": [np.empty((n_rec, sizes[l])) for l in range(1, H + 1)],
            "xi": [np.empty((n_rec, sizes[l])) for l in range(1, H + 1)],
            "W": [np.empty((n_rec,) + W[l].shape) for l in range(1, N + 1)],
        }
    k_rec = 0

    L_all = range(1, N + 1)
    L_hid = range(1, H + 1)
    dot, outer, multiply, add, subtract = np.dot, np.outer, np.multiply, np.add, np.subtract

    p_cur = -1
    r_prev, r_new, ub_prev, ub_new = r_a, r_b, ub_a, ub_b
    rI_prev, rI_new, ubI_prev, ubI_new = rI_a, rI_b, ubI_a, ubI_b
    for n in range(n_steps):
        p = n // sps
        if p != p_cur:  # schedule values of sample p
            p_cur = p
            x_p = x[p]
            gam = target_on[p]
            lam = learn[p]
            gs_o = g_l + g_bas + gam * g_tgt
            cb_o, k_o = g_bas / gs_o, dt * gs_o
            ct_o = gam * g_tgt / gs_o
            tgt_term = ct_o * u_tgt[p] if gam != 0.0 else None
            c_fw = [0.0] + [dt * lam * eta_fw[l - 1] for l in L_all]
            c_ip = [0.0] + [dt * lam * eta_ip[l - 1] for l in L_hid]
            c_pi = [0.0] + [-dt * lam * eta_pi[l - 1] for l in L_hid]
            c_bw = [0.0] + [dt * lam * eta_bw[l - 1] for l in L_hid]
            b_keep = [0.0] + [1.0 - c_bw[l] * alpha[l - 1] for l in L_hid]

        if noisy:
            if rng is None:
                for l in L_hid:
                    noise_row[l] = noise_src[l][n]
            else:
                if chunk_buf is None or n - chunk_start >= chunk_buf.shape[0]:
                    chunk_start = n
                    chunk_buf = rng.standard_normal((min(chunk, n_steps - n), offs[-1]))
                row = chunk_buf[n - chunk_start]
                for l in L_hid:
                    noise_row[l] = row[offs[l - 1]:offs[l]]

        # -- 1./2. dendritic inputs from the stored values of step n-1 --
        for l in L_all:
            dot(W[l], r_prev[l - 1], out=vbas[l])
        for l in L_hid:
            Bl = W[l + 1].T if bp else B[l]
            dot(Bl, r_prev[l + 1], out=vapi[l])
            dot(BPI[l], rI_prev[l], out=tmp[l])
            vapi[l] += tmp[l]
            dot(WIP[l], r_prev[l], out=vden[l])

        # -- 3./4. hidden pyramids: Euler (v_api + xi(n-1)), noise, u_eff (v_api + xi(n)) --
        for l in L_hid:
            ul, t, ue = u[l], tmp[l], ub_new[l]
            # u_eff with the apical input of the Euler step, into ub_new[l]
            multiply(vbas[l], cb_h, out=ue)
            if noisy:
                add(vapi[l], xi[l], out=t)
                t *= ca_h
            else:
                multiply(vapi[l], ca_h, out=t)
            ue += t
            _euler(ul, ue, k_h, t)
            if noisy:  # the OU step to xi(n); u_eff swaps xi(n-1) for xi(n)
                xl = xi[l]
                multiply(xl, ca_h, out=t)
                ue -= t
                xl *= xi_decay
                multiply(noise_row[l], xi_gain, out=t)
                xl += t
                multiply(xl, ca_h, out=t)
                ue += t
            _rate(ul, ue, prospective, phi, r_new[l])

        # -- output pyramids (gate and target of sample p) --
        ul, t, ue = u[N], tmp[N], ub_new[N]
        multiply(vbas[N], cb_o, out=ue)
        if tgt_term is not None:
            ue += tgt_term
        _euler(ul, ue, k_o, t)
        _rate(ul, ue, prospective, phi, r_new[N])

        # -- interneurons (nudged by the stored u_breve of layer l+1) --
        for l in L_hid:
            ul, t, ue = uI[l], tmpI[l], ubI_new[l]
            multiply(vden[l], cd_I, out=ue)
            multiply(ub_prev[l + 1], cn_I, out=t)
            ue += t
            _euler(ul, ue, k_I, t)
            _rate(ul, ue, prospective, phi, rI_new[l])

        # -- 4. plasticity: post of step n, pre stored at n-1 --
        for l in L_all:
            if lowpass and M_live[l]:  # W(n) = W(n-1) + dt M(n-1); M decays towards the update
                multiply(M[l], dt, out=dW[l])
                W[l] += dW[l]
                M[l] *= 1.0 - dt / tau_lo
            c = c_fw[l]
            if c == 0.0:
                continue
            e = ephi[l]
            multiply(vbas[l], vh_h if l < N else vh_o, out=e)
            phi(e, e)
            subtract(r_new[l], e, out=e)  # phi(u_breve) - phi(vhat_bas)
            e *= c / tau_lo if lowpass else c
            outer(e, r_prev[l - 1], out=dW[l])
            if lowpass:
                M[l] += dW[l]
                M_live[l] = True
            else:
                W[l] += dW[l]
        for l in L_hid:
            c = c_ip[l]
            if c != 0.0:
                e = ephiI[l]
                multiply(vden[l], vh_I, out=e)
                phi(e, e)
                subtract(rI_new[l], e, out=e)
                e *= c
                outer(e, r_prev[l], out=dWIP[l])
                WIP[l] += dWIP[l]
            c = c_pi[l]
            if c != 0.0:
                t = tmp[l]
                multiply(vapi[l], c, out=t)  # -dt lambda eta_pi v_api
                outer(t, rI_prev[l], out=dBPI[l])
                BPI[l] += dBPI[l]
            c = c_bw[l]
            if pal and c != 0.0:  # B += dt lambda eta_bw (xi(n) r~_{l+1}(n-1)^T - alpha B)
                outer(xi[l], hp[l + 1], out=dB[l])
                dB[l] *= c
                B[l] *= b_keep[l]
                B[l] += dB[l]

        # -- 5. store (high-pass first: it needs r(n-1)) --
        if pal:
            for l in range(2, N + 1):
                hp[l] *= hp_decay
                hp[l] += r_new[l]
                hp[l] -= r_prev[l]
        r_prev, r_new = r_new, r_prev
        ub_prev, ub_new = ub_new, ub_prev
        rI_prev, rI_new = rI_new, rI_prev
        ubI_prev, ubI_new = ubI_new, ubI_prev
        r_prev[0] = x_p

        if n_rec and (n + 1) % record_every == 0 and k_rec < n_rec:
            for l in L_all:
                rec["u_breve"][l - 1][k_rec] = ub_prev[l]
                rec["r"][l - 1][k_rec] = r_prev[l]
                rec["W"][l - 1][k_rec] = W[l]
            for l in L_hid:
                rec["v_api"][l - 1][k_rec] = vapi[l]
                rec["xi"][l - 1][k_rec] = xi[l]
            k_rec += 1

    out_B = [W[l + 1].T.copy() for l in L_hid] if bp else [B[l].copy() for l in L_hid]
    result = {
        "weights": {
            "W": [W[l] for l in L_all],
            "B": out_B,
            "WIP": [WIP[l] for l in L_hid],
            "BPI": [BPI[l] for l in L_hid],
        },
        "u": [u[l] for l in L_all],
        "u_breve": [ub_prev[l].copy() for l in L_all],
        "r": [r_prev[l].copy() for l in L_all],
        "u_I": [uI[l] for l in L_hid],
        "u_breve_I": [ubI_prev[l].copy() for l in L_hid],
        "r_I": [rI_prev[l].copy() for l in L_hid],
        "r_0": np.array(r_prev[0], copy=True),
        "xi": [xi[l] for l in L_hid],
        "v_api": [vapi[l].copy() for l in L_hid],
        "n_steps": n_steps,
        "steps_per_sample": sps,
    }
    if n_rec:
        result["rec"] = rec
    return result


# ----------------------------------------------------------------------------------
# inputs from a microcircuit description
# ----------------------------------------------------------------------------------
def from_microcircuit(cfg, weights: dict, t_pres: float, **extra) -> tuple[LoopParams, dict]:
    """LoopParams and weight lists for a `microcircuits.dendritic.MicrocircuitConfig` and its
    weights {"W1": .., "B1": .., "WIP1": .., "BPI1": ..}. Only settings are read from cfg;
    the equations here stay independent of the backends."""
    n = cfg.n_layers
    params = LoopParams(layers=cfg.layers, dt=cfg.dt, t_pres=t_pres, g_l=cfg.g_l, g_bas=cfg.g_bas,
                        g_api=cfg.g_api, g_den=cfg.g_den, g_nI=cfg.g_nI, g_tgt=cfg.g_tgt,
                        activation=cfg.activation, prospective=cfg.prospective, feedback=cfg.feedback,
                        eta_fw=cfg.eta_fw, eta_ip=cfg.eta_ip, eta_pi=cfg.eta_pi, tau_lo=cfg.tau_lo,
                        sigma=cfg.sigma, tau_xi=cfg.tau_xi, eta_bw=cfg.eta_bw,
                        alpha=cfg.alpha, tau_hp=cfg.tau_hp, **extra)
    lists = {"W": [weights[f"W{l}"] for l in range(1, n + 1)]}
    for key in ("B", "WIP", "BPI"):
        lists[key] = [weights[f"{key}{l}"] for l in range(1, n)]
    return params, lists
