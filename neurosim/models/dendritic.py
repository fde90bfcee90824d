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
        group = Brian2Group(lines, namespace, {"rate": Signal("r", "r_now", kept=True),
                                               "voltage": Signal("u_breve", "u_breve_now", kept=True)},
                            quantities, store="r = r_now\nu_breve = u_breve_now",
                            initial={"r": float(activations.numpy(phi)(0.0))})
        output = self._output_brian2(ctx, group)
        for c in self.dendrites:
            if f"error_{c}" in ctx.needs:  # once per neuron, for all synapses of the rule
                lines.append(f"e_{c} : 1")
                after.append(f"e_{c} = {output} - rhat_{c}")
                quantities[f"error_{c}"] = f"e_{c}"
        group.after = "\n".join([*after, *([group.after] if group.after else [])])
        return group

    def _output_brian2(self, ctx, group: Brian2Group) -> str:
        """What the neuron sends, added to `group`; returns the expression of its output
        that the dendritic prediction error compares with phi(vhat_c): here the rate."""
        return "r_now"

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
                new["ou"] = advance(s["ou"], draws["noise"])
                seen = torch.addcmul(drive, g[noise.port], s["ou"])
                drive = torch.addcmul(drive, g[noise.port], new["ou"])
            new["u"] = torch.addcmul(dt * seen, given["keep"], s["u"])
            new["u_breve"] = drive / given["g_sum"] if self.prospective else new["u"]
            new["r"] = phi(new["u_breve"])
            return emit(s, new, draws) if emit else new

        zeros = ctx.zeros()
        initial = {"u": zeros, "u_breve": zeros, "r": phi(zeros), **{f"v_{c}": zeros for c in self.dendrites}}
        if noise:
            initial["ou"] = zeros
        group = TorchGroup(initial, step, {"rate": lambda s: s["r"], "voltage": lambda s: s["u_breve"]},
                           draws={"noise": "normal"} if noise else None, prepare=prepare)
        emit, output = self._output_torch(ctx, group)
        group.quantities.update({f"v_{c}": (lambda s, c=c: s[f"v_{c}"]) for c in self.dendrites})
        group.quantities.update({f"error_{c}": (lambda s, c=c: output(s) - phi(vhat[c] * s[f"v_{c}"]))
                                 for c in self.dendrites})
        if noise:
            group.quantities[f"noise_{noise.port}"] = lambda s: s["ou"]
        return group

    def _output_torch(self, ctx, group: TorchGroup) -> tuple:
        """What the neuron sends, added to `group`: (emit(start, new, draws) -> new, run
        after the soma's step, or None; its output that the dendritic prediction error
        compares with phi(vhat_c), as a function of the state): here the rate."""
        return None, lambda s: s["r"]


@dataclass(frozen=True)
class SpikingDendriticNeuron(DendriticNeuron):
    """The dendritic neuron with a spiking soma (Urbanczik & Senn 2014): the same
    compartments and u, u_breve; the soma fires as a point process of rate
    r_max phi(u_breve) (escape noise; r_max in 1/ms), and what it sends is its spike
    train through an exponential PSP kernel of time constant tau_s (ms), normalised so
    that its mean is the rate neuron's r:

        s(n)   = 1 if w(n) < r_max dt phi(u_breve(n)), else 0      w(n) ~ U[0, 1)
        psp(n) = (1 - dt/tau_s) psp(n-1) + s(n) / (r_max tau_s)    E[psp] -> phi(u_breve)

    Signals: "psp" (the default: dendrites downstream sum W psp, as the rate model's
    W r) and "voltage" (u_breve). The dendritic prediction error reads the spike train
    in place of the rate: e_c = s(n) / (r_max dt) - phi(vhat_c), whose mean over the
    spikes is the rate neuron's phi(u_breve) - phi(vhat_c). The neuron's own spike noise
    through its PSP kernel, psp_noise = psp - phi(u_breve), is a quantity too (PAL may
    correlate it instead of injected noise). Needs r_max dt <= 1 and an activation in
    [0, 1]."""

    r_max: float = 0.2
    tau_s: float = 10.0

    signals = ("psp", "voltage")
    state = ("u", "psp")
    fires = True
    BOUNDED = ("logistic", "hard_sigmoid")

    def __post_init__(self):
        super().__post_init__()
        check_number("neuron", "r_max", self.r_max, strict=True)
        check_number("neuron", "tau_s", self.tau_s, strict=True)
        if self.activation not in self.BOUNDED:
            raise ValueError(f"spiking neuron: activation {self.activation!r} is not a rate in [0, 1]; "
                             f"choose one of {self.BOUNDED}")

    def recordable(self, fed, noise):
        return (*super().recordable(fed, noise), "psp")

    def draw_streams(self, noise) -> tuple:
        return (*super().draw_streams(noise), "spikes")

    def chance(self, dt: float) -> float:
        """r_max dt, the chance of a spike in a step at phi = 1; refused above 1."""
        if self.r_max * dt > 1:
            raise ValueError(f"spiking neuron: r_max = {self.r_max:g}/ms fires more than once per step of "
                             f"dt = {dt:g} ms; r_max dt must be <= 1")
        return self.r_max * dt

    def _output_brian2(self, ctx, group):
        """Escape noise as the threshold, the PSP's decay in the Euler step and its jump in
        the reset; `spiked` marks this step's spikes until the end of the step."""
        self.chance(ctx.dt)
        r_max = ctx.const("r_max", self.r_max, "1/ms")
        tau_s = ctx.const("tau_s", self.tau_s, "ms")
        jump = ctx.const("psp_jump", 1.0 / (self.r_max * self.tau_s))
        group.equations += [f"dpsp/dt = -psp/{tau_s} : 1", "psp_sent : 1", "spiked : 1"]
        group.threshold = f"{ctx.uniform('spikes')} < {r_max}*dt*r_now"
        group.reset = f"psp += {jump}\nspiked = 1"
        group.signals = {"psp": Signal("psp_sent", "psp", kept=True), "voltage": group.signals["voltage"]}
        group.store += "\npsp_sent = psp\nspiked = 0"
        if "psp_noise" in ctx.needs:  # once per neuron, after the update
            group.equations.append("psp_noise : 1")
            group.after = "psp_noise = psp - r_now"
            group.quantities["psp_noise"] = "psp_noise"
        return f"spiked/({r_max}*dt)"

    def _output_torch(self, ctx, group):
        import torch

        chance = ctx.param(lambda pop: pop.model.chance(ctx.dt))
        keep = 1.0 - ctx.dt / ctx.param(lambda pop: pop.model.tau_s)
        jump = ctx.param(lambda pop: 1.0 / (pop.model.r_max * pop.model.tau_s))

        def emit(s, new, draws):
            w = draws["spikes"]
            new["spikes"] = (w < chance * new["r"]).to(w.dtype)
            new["psp"] = torch.addcmul(keep * s["psp"], jump, new["spikes"])
            return new

        zeros = ctx.zeros()
        group.initial.update(psp=zeros, spikes=zeros)
        group.signals = {"psp": lambda s: s["psp"], "voltage": group.signals["voltage"]}
        group.draws = {**(group.draws or {}), "spikes": "uniform"}
        group.quantities["psp_noise"] = lambda s: s["psp"] - s["r"]
        return emit, lambda s: s["spikes"] / chance


def _neuron(g_l, dendrites, nudging, activation, prospective, spiking):
    """A rate neuron, or with `spiking` ({"r_max": ..., "tau_s": ...}) a spiking one."""
    if spiking is None:
        return DendriticNeuron(g_l, dendrites, nudging, activation, prospective)
    return SpikingDendriticNeuron(g_l, dendrites, nudging, activation, prospective, **spiking)


def pyramidal(g_l=0.03, g_bas=0.1, g_api=0.06, activation="logistic", prospective=True, spiking=None):
    """Hidden pyramidal neuron: soma, basal and apical dendrites."""
    return _neuron(g_l, {"basal": g_bas, "apical": g_api}, {}, activation, prospective, spiking)


def output_pyramidal(g_l=0.03, g_bas=0.1, g_tgt=0.06, activation="logistic", prospective=True, spiking=None):
    """Output pyramidal neuron: soma, basal dendrite, and target nudging g_tgt (u_tgt - u)."""
    return _neuron(g_l, {"basal": g_bas}, {"target": g_tgt}, activation, prospective, spiking)


def interneuron(g_l=0.03, g_den=0.1, g_nI=0.06, activation="logistic", prospective=True, spiking=None):
    """Interneuron: soma, dendrite, and nudging g_nI (u_breve of the pyramid above - u)."""
    return _neuron(g_l, {"dendrite": g_den}, {"nudge": g_nI}, activation, prospective, spiking)
