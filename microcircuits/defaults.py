"""The config every runner starts from: DEFAULTS, the sections `model`, `network`,
`task` and `run` with their default values (a runner may change or add some: the rate
runner's [run] has `batch`), the BACKENDS a run may name, and `overlay`, which lays a
user's config over a runner's defaults."""
import copy

DEFAULTS = {
    "model": "dendritic",
    "network": {},
    "task": {"name": "yinyang", "epochs": 10, "t_pres": 1.0, "n_train": None, "n_test": None,
             "target_on": 1.0, "target_off": 0.1, "teacher_layers": None, "teacher_init": 2.0,
             "teacher_activation": None,
             "mismatch_every": 10, "settle": 0.0, "test_every": 1, "record_every": None},
    "run": {"backend": "brian2", "target": "cpp_standalone", "seed": 0, "replicas": 1,
            "device": "cpu", "dtype": "float64", "compile": None},
}
BACKENDS = ("brian2", "torch")


def overlay(config: dict, user: dict) -> dict:
    """config (a runner's defaults) with the user's sections laid over it; an unknown
    section, a section that is not a table or an unknown key ([network] excepted: the
    model checks it) is a ValueError naming it. The user's `model` is left to the runner."""
    for section, values in user.items():
        if section == "model":
            continue
        if section not in config:
            raise ValueError(f"unknown config section or key {section!r}; known: {sorted(config)}")
        if not isinstance(values, dict):
            raise ValueError(f"config section [{section}] must be a table, got {values!r}")
        if section != "network":
            unknown = sorted(set(values) - set(config[section]))
            if unknown:
                raise ValueError(f"unknown keys in [{section}]: {unknown}; known: {sorted(config[section])}")
        config[section].update(copy.deepcopy(values))
    return config
