"""Dendritic rate neurons with prospective coding (Sacramento et al. 2018; Latent
Equilibrium, Haider et al. 2021): a leaky soma u conductance-coupled to dendritic
compartments c (basal, apical, dendrite) and to somatic nudging inputs n (target,
nudge), docs/equations.md:

    du/dt   = -g_l u + sum_c g_c (v_c + xi_c - u) + sum_n gamma_n g_n (v_n - u)
    g_sum   = g_l + sum_c g_c + sum_n gamma_n g_n
    u_eff   = (sum_c g_c (v_c + xi_c) + sum_n gamma_n g_n v_n) / g_sum
    u_breve = u_eff (prospective coding) or u;   r = phi(u_breve)
    vhat_c  = g_c / (g_l + sum_c' g_c') v_c      (the soma that c alone would cause)

v_c is the sum of the projections onto c; a nudging input that no projection feeds reads
the schedule ("<pop>.<n>") and its gate gamma_n. xi_c is OUNoise on one dendrite: the
soma's Euler step sees xi(n-1), u_breve and r see xi(n). The population stores r and
u_breve at the end of each step (what it sends: "rate" r, "voltage" u_breve).
Conductances in 1/ms.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import activations
from ..noise import OUNoise
from .base import Brian2Group, Model, Signal, TorchGroup, check_number

DENDRITES = ("basal", "apical", "dendrite")
NUDGING = ("target", "nudge")


@dataclass(frozen=True)
class DendriticNeuron(Model):
    """Leaky soma, dendrites {name: g_c} and nudging inputs {name: g_n} (1/ms)."""

    g_l: float
    dendrites: dict = field(default_factory=dict)
    nudging: dict = field(default_factory=dict)
    activation: str = "logistic"
    prospective: bool = True

    signals = ("rate", "voltage")
    state = ("u",)
    noises = (OUNoise,)

    def __post_init__(self):
        check_number("neuron", "g_l", self.g_l)
        for name, g in {**self.dendrites, **self.nudging}.items():
            check_number("neuron", f"g_{name}", g)
        for name, allowed in [(c, DENDRITES) for c in self.dendrites] + [(n, NUDGING) for n in self.nudging]:
            if name not in allowed:
                raise ValueError(f"unknown {'dendritic compartment' if allowed is DENDRITES else 'nudging input'} "
                                 f"{name!r}; choose from {allowed}")
        activations.check(self.activation, "neuron")

    def check_noise(self, where, noise):
        super().check_noise(where, noise)
        if noise.port not in self.dendrites:
            raise ValueError(f"{where}: noise on {noise.port!r}, which is not one of its dendrites")

    @property
    def ports(self) -> tuple:
        return (*self.dendrites, *self.nudging)

    def conductance(self, port: str) -> float:
        return {**self.dendrites, **self.nudging}[port]

    def prediction_factor(self, compartment: str) -> float:
        """vhat_c / v_c = g_c / (g_l + sum of dendritic g): the soma without nudging."""
        return self.dendrites[compartment] / (self.g_l + sum(self.dendrites.values()))

    def data(self, name, size, fed):
        return {f"{name}.{n}": size for n in self.nudging if n not in fed}

    def gated(self, name, fed):
        return tuple(self.data(name, 0, fed))

    def recordable(self, fed, noise):
        return ("u", "r", "u_breve", *(f"v_{c}" for c in self.dendrites), *(("ou",) if noise else ()))

    def brian2(self, ctx) -> Brian2Group:
        """du/dt as above (Euler), r and u_breve stored at the end of the step, the
        error e_c = r - phi(vhat_c) per neuron after the update when a rule reads it."""
        k, phi, noise = ctx.name, self.activation, ctx.pop.noise
        g = {c: ctx.const(f"g_{c}", self.conductance(c), "1/ms") for c in self.ports}
        g_l = ctx.const("g_l", self.g_l, "1/ms")
        lines, drive, weighted, total = [], [f"-{g_l}*u"], [], [g_l]
        quantities = {"noise_" + noise.port: "ou"} if noise else {}
        for c in self.dendrites:
            lines += [f"v_{c} = {ctx.input(c)} : 1", f"vhat_{c} = {self.prediction_factor(c)!r}*v_{c} : 1",
                      f"rhat_{c} = {activations.brian2(phi, f'vhat_{c}')} : 1"]
            quantities[f"v_{c}"] = f"v_{c}"
            v = f"(v_{c} + ou)" if noise and noise.port == c else f"v_{c}"
            drive.append(f"{g[c]}*({v} - u)")
            weighted.append(f"{g[c]}*{v}")
            total.append(g[c])
        for n in self.nudging:
            if n in ctx.fed:
                lines.append(f"v_{n} = {ctx.input(n)} : 1")
                gate = g[n]
            else:  # from the schedule, with its gate
                lines.append(f"v_{n} = {ctx.data(f'{k}.{n}')}(t, i) : 1")
                gate = f"{ctx.gate(f'{k}.{n}')}(t)*{g[n]}"
            drive.append(f"{gate}*(v_{n} - u)")
            weighted.append(f"{gate}*v_{n}")
            total.append(gate)
        lines = [f"du/dt = {' + '.join(drive)} : 1", *lines, f"g_sum = {' + '.join(total)} : Hz",
                 f"u_eff = ({' + '.join(weighted)})/g_sum : 1",
                 f"u_breve_now = {'u_eff' if self.prospective else 'u'} : 1",
                 f"r_now = {activations.brian2(phi, 'u_breve_now')} : 1", "r : 1", "u_breve : 1"]
        namespace, after = {}, []
        if noise:
            noise_lines, namespace = noise.brian2(ctx)
            lines += noise_lines
        for c in self.dendrites:
            if f"error_{c}" in ctx.needs:  # once per neuron, for all synapses of the rule
                lines.append(f"e_{c} : 1")
                after.append(f"e_{c} = r_now - rhat_{c}")
                quantities[f"error_{c}"] = f"e_{c}"
        return Brian2Group(lines, namespace, {"rate": Signal("r", "r_now", kept=True),
                                              "voltage": Signal("u_breve", "u_breve_now", kept=True)},
                           quantities, after="\n".join(after), store="r = r_now\nu_breve = u_breve_now",
                           initial={"r": float(activations.numpy(phi)(0.0))})

    def torch(self, ctx) -> TorchGroup:
        """The soma's Euler step with the drive D = sum_c g_c (v_c + xi_c) + sum_n gamma_n g_n v_n:

            u(n) = u + dt (D(xi(n-1)) - g_sum u) = (1 - dt g_sum) u + dt D(xi(n-1))
            u_breve(n) = D(xi(n)) / g_sum

        g_sum, 1 - dt g_sum and the scheduled targets' part of D change only with the
        presentation: `prepare` computes them once per block of steps."""
        import torch

        phi = activations.torch(self.activation)[0]
        name, noise, dt, fed = ctx.name, ctx.pop.noise, ctx.dt, ctx.fed
        g = {c: ctx.param(lambda pop, c=c: pop.model.conductance(c)) for c in self.ports}
        vhat = {c: ctx.param(lambda pop, c=c: pop.model.prediction_factor(c)) for c in self.dendrites}
        scheduled = [c for c in self.nudging if c not in fed]
        g_fixed = ctx.param(lambda pop: pop.model.g_l) + sum(g[c] for c in self.ports if c not in scheduled)
        advance = noise.torch(ctx) if noise else None

        def prepare(data, gates):
            g_sum, drive = g_fixed, None
            for c in scheduled:  # a target from the schedule, gated
                gate = gates[f"{name}.{c}"] * g[c]
                g_sum = g_sum + gate
                drive = gate * data[f"{name}.{c}"] if drive is None else torch.addcmul(drive, gate, data[f"{name}.{c}"])
            return {"g_sum": g_sum, "keep": 1.0 - dt * g_sum, "drive": drive}

        fed_ports = [(c, g[c], f"v_{c}" if c in self.dendrites else None) for c in self.ports if c in fed]
        unfed = [f"v_{c}" for c in self.dendrites if c not in fed]

        def step(s, ports, given, draws):
            drive, new = given["drive"], {v: s[v] for v in unfed}
            for c, g_c, v in fed_ports:
                drive = g_c * ports[c] if drive is None else torch.addcmul(drive, g_c, ports[c])
                if v is not None:
                    new[v] = ports[c]
            if drive is None:
                drive = torch.zeros_like(s["u"])
            seen = drive
            if noise:
                new["ou"] = advance(s["ou"], draws)
                seen = torch.addcmul(drive, g[noise.port], s["ou"])
                drive = torch.addcmul(drive, g[noise.port], new["ou"])
            new["u"] = torch.addcmul(dt * seen, given["keep"], s["u"])
            new["u_breve"] = drive / given["g_sum"] if self.prospective else new["u"]
            new["r"] = phi(new["u_breve"])
            return new

        zeros = ctx.zeros()
        initial = {"u": zeros, "u_breve": zeros, "r": phi(zeros), **{f"v_{c}": zeros for c in self.dendrites}}
        if noise:
            initial["ou"] = zeros
        quantities = {f"v_{c}": (lambda s, c=c: s[f"v_{c}"]) for c in self.dendrites}
        quantities.update({f"error_{c}": (lambda s, c=c: s["r"] - phi(vhat[c] * s[f"v_{c}"])) for c in self.dendrites})
        if noise:
            quantities[f"noise_{noise.port}"] = lambda s: s["ou"]
        return TorchGroup(initial, step, {"rate": lambda s: s["r"], "voltage": lambda s: s["u_breve"]}, quantities,
                          draws="normal" if noise else None, prepare=prepare)


def pyramidal(g_l=0.03, g_bas=0.1, g_api=0.06, activation="logistic", prospective=True):
    """Hidden pyramidal neuron: soma, basal and apical dendrites."""
    return DendriticNeuron(g_l, {"basal": g_bas, "apical": g_api}, {}, activation, prospective)


def output_pyramidal(g_l=0.03, g_bas=0.1, g_tgt=0.06, activation="logistic", prospective=True):
    """Output pyramidal neuron: soma, basal dendrite, and target nudging g_tgt (u_tgt - u)."""
    return DendriticNeuron(g_l, {"basal": g_bas}, {"target": g_tgt}, activation, prospective)


def interneuron(g_l=0.03, g_den=0.1, g_nI=0.06, activation="logistic", prospective=True):
    """Interneuron: soma, dendrite, and nudging g_nI (u_breve of the pyramid above - u)."""
    return DendriticNeuron(g_l, {"dendrite": g_den}, {"nudge": g_nI}, activation, prospective)
