"""The config every runner starts from: DEFAULTS, the sections `model`, `network`,
`task` and `run` with their default values (a runner may change or add some: the rate
runner's [run] has `batch`), and the BACKENDS a run may name."""

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
