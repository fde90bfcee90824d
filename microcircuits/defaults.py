"""The config every runner starts from: DEFAULTS, the sections `model`, `network`,
`task` and `run` with their default values (a runner may change or add some: the rate
runner's [run] has `batch`), the BACKENDS a run may name, the SCHEMA of [task] and [run],
and `overlay`, which lays a user's config over a runner's defaults and checks it."""
import copy

from neurosim.schema import Setting, check_section

DEFAULTS = {
    "model": "dendritic",
    "network": {},
    "task": {"name": "yinyang", "epochs": 10, "t_pres": 1.0, "n_train": None, "n_test": None,
             "target_on": 1.0, "target_off": 0.1, "teacher_layers": None, "teacher_init": 2.0,
             "teacher_activation": None, "teacher_bias": None, "inputs": "uniform",
             "mismatch_every": 10, "settle": 0.0, "test_every": 1, "record_every": None},
    "run": {"backend": "brian2", "target": "cpp_standalone", "seed": 0, "replicas": 1,
            "device": "cpu", "dtype": "float64", "compile": None, "checkpoint_every": None},
}
BACKENDS = ("brian2", "torch")
# What [task] and [run] may hold (neurosim.schema); the runners check the rest (task names
# per model, what a backend can run).
SCHEMA = {
    "task": {"name": Setting("str"), "epochs": Setting("int", low=0), "t_pres": Setting("float", low=0, above=True),
             "n_train": Setting("int", low=1, none=True), "n_test": Setting("int", low=1, none=True),
             "target_on": Setting("float"), "target_off": Setting("float"),
             "teacher_layers": Setting("ints", low=1, none=True), "teacher_init": Setting("floats"),
             "teacher_activation": Setting("strs", none=True), "teacher_bias": Setting("floats", none=True),
             "inputs": Setting("str", choices=("uniform", "normal")), "mismatch_every": Setting("int", low=1),
             "settle": Setting("float", low=0), "test_every": Setting("int", low=1),
             "record_every": Setting("int", low=1, none=True)},
    "run": {"backend": Setting("str", choices=BACKENDS),
            "target": Setting("str", choices=("cython", "numpy", "cpp_standalone")), "seed": Setting("int", low=0),
            "replicas": Setting("int", low=1), "device": Setting("str"),
            "dtype": Setting("str", choices=("float32", "float64")), "compile": Setting("bool", none=True),
            "batch": Setting("int", low=1), "checkpoint_every": Setting("float", low=0, above=True, none=True)},
}


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
    for section, settings in SCHEMA.items():
        check_section(section, config[section], settings)
    return config
