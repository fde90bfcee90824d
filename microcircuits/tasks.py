"""The data every runner trains and tests on: a config's [task] -> Task (inputs, target
potentials, labels).

- yinyang, digits: neurosim.datasets' splits, cut to task.n_train / task.n_test (Yin-Yang
  draws more than its 5000 / 1000 samples where they ask for more), with
  one-hot target potentials (task.target_on for the true class, task.target_off for
  the others);
- teacher_student: U[0, 1] (or N(0, 1)) inputs and a teacher's outputs as targets; the teacher is a
  microcircuit's effective network, or with task.teacher_activation a plain network
  that every model (dendritic and the rate circuits) sees alike (network_teacher_task);
- alignment (PAL's B-alignment runs): U[0, 1] inputs, no target, no test set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim import activations, datasets, schema

from . import dendritic, rate_models
from .metrics import feedforward

TASKS = ("yinyang", "digits", "teacher_student", "alignment")


@dataclass
class Task:
    """The data of one run: inputs, target potentials and labels for training and test."""

    train_x: np.ndarray
    train_y: np.ndarray | None  # target potentials, one row per sample; None: no target
    test_x: np.ndarray  # may have no rows
    test_y: np.ndarray | None
    test_labels: np.ndarray | None  # None for regression

    def probe_inputs(self, n: int = 500) -> np.ndarray:
        """Inputs at which the phi'-weighted angles are taken: the test set, or the training set."""
        return (self.test_x if len(self.test_x) else self.train_x)[:n]


CLASSIFICATION = ("yinyang", "digits")  # the tasks with classes (a read-out to export and map)


def load_task(task: dict, cfg: dendritic.MicrocircuitConfig, seed: int) -> Task:
    """The data of a config's [task] for a network with cfg.layers (only cfg.layers is
    read, so every model's config serves)."""
    name = task["name"]
    for key, unset in (("inputs", "uniform"), ("teacher_bias", None)):
        if name != "teacher_student" and task[key] != unset:
            raise ValueError(f"task.{key} = {task[key]!r} applies to the teacher_student task only, not {name!r}")
    if name == "alignment":
        x = np.random.default_rng(seed + 20_000).uniform(0.0, 1.0, (task["n_train"] or 100, cfg.layers[0]))
        return Task(x, None, np.zeros((0, cfg.layers[0])), None, None)
    if name == "yinyang":  # the usual 5000 / 1000 / 1000 split, larger where n_train or n_test asks
        train, _, test = datasets.yin_yang_splits(seed=seed, sizes=(max(5000, task["n_train"] or 0), 1000,
                                                                    max(1000, task["n_test"] or 0)))
    elif name == "digits":
        train, test = datasets.digits(seed=seed)
    else:
        return _teacher_student(task, cfg, seed)
    train = train.subset(np.arange(min(len(train), task["n_train"] or len(train))))
    test = test.subset(np.arange(min(len(test), task["n_test"] or len(test))))
    for ds in (train, test):
        if ds.x.shape[1] != cfg.layers[0] or ds.n_classes != cfg.layers[-1]:
            raise ValueError(f"task {name!r} has {ds.x.shape[1]} inputs and {ds.n_classes} classes, but "
                             f"network.layers is {cfg.layers}")
    on, off = task["target_on"], task["target_off"]
    return Task(train.x, datasets.one_hot_targets(train.labels, train.n_classes, on, off),
                test.x, datasets.one_hot_targets(test.labels, test.n_classes, on, off), test.labels)


def _teacher_student(task: dict, cfg, seed: int) -> Task:
    """A teacher microcircuit's effective network, forward weights U[-teacher_init,
    teacher_init] (or U[lo, hi] for a pair: [2, 2] makes every weight 2), gives the targets;
    with task.teacher_activation set, the network teacher of network_teacher_task."""
    if task["teacher_activation"]:
        return network_teacher_task(task, cfg.layers, task["teacher_activation"], seed)
    if task["teacher_bias"] is not None:
        raise ValueError("task.teacher_bias needs a network teacher (task.teacher_activation); the "
                         "microcircuit teacher has no biases")
    teacher_layers = _teacher_layers(task, cfg.layers)
    teacher_cfg = dendritic.MicrocircuitConfig(layers=teacher_layers, init_w=task["teacher_init"])
    weights = dendritic.initial_weights(teacher_cfg, seed + 10_000)
    teacher = [weights[f"W{l}"] for l in range(1, teacher_cfg.n_layers + 1)]
    return _teacher_data(task, cfg.layers[0], lambda x: feedforward(teacher_cfg, teacher, x)[-1], seed)


def network_teacher_task(task: dict, layers: list[int], acts, seed: int) -> Task:
    """The teacher network r_l = f(W_l r_{l-1} + b_l) (f: acts = [hidden, output]) with
    layers task.teacher_layers (default: the student's), weights N(0, teacher_init^2 /
    n_{l-1}) (a pair [lo, hi]: U[lo, hi]) and biases U[lo, hi] for task.teacher_bias =
    [lo, hi] (unset: none) gives the targets; every model (dendritic and the rate
    circuits) sees the same data for the same seed."""
    teacher_layers = _teacher_layers(task, layers)
    if not (isinstance(acts, (list, tuple)) and len(acts) == 2
            and all(a in activations.NAMES for a in acts)):
        raise ValueError(f"task.teacher_activation must be [hidden, output], each one of "
                         f"{sorted(activations.NAMES)}, got {acts!r}")
    scale = task["teacher_init"]
    if isinstance(scale, (list, tuple)):
        if len(scale) != 2 or not scale[0] <= scale[1]:
            raise ValueError(f"task.teacher_init must be a number or a pair [lo, hi] with lo <= hi, got {scale!r}")
        rng = np.random.default_rng(seed + 10_000)
        teacher = [rng.uniform(scale[0], scale[1], (n, m)) for m, n in zip(teacher_layers[:-1], teacher_layers[1:])]
    else:
        if not scale > 0:
            raise ValueError(f"task.teacher_init must be a number > 0 or a pair [lo, hi], got {scale!r}")
        teacher = list(rate_models.forward_weights(teacher_layers, seed + 10_000, float(scale)).values())
    biases = task["teacher_bias"]
    if biases is not None:
        if not (isinstance(biases, (list, tuple)) and len(biases) == 2 and biases[0] <= biases[1]):
            raise ValueError(f"task.teacher_bias must be a pair [lo, hi] with lo <= hi, got {biases!r}")
        rng = np.random.default_rng(seed + 10_001)
        biases = [rng.uniform(biases[0], biases[1], n) for n in teacher_layers[1:]]
    return _teacher_data(task, layers[0], lambda x: rate_models.feedforward(teacher, x, *acts, biases)[-1], seed)


def _teacher_layers(task: dict, layers: list[int]) -> list[int]:
    teacher_layers = schema.layer_sizes(task["teacher_layers"] or layers, "task.teacher_layers")
    if teacher_layers[0] != layers[0] or teacher_layers[-1] != layers[-1]:
        raise ValueError(f"task.teacher_layers {teacher_layers} must share input and output size "
                         f"with network.layers {layers}")
    return teacher_layers


def _teacher_data(task: dict, n_in: int, teacher, seed: int) -> Task:
    """n_train (default 1000) training and n_test (200) test inputs, U[0, 1] (task.inputs =
    "normal": N(0, 1)), with teacher(x) as targets."""
    train = datasets.teacher_student(teacher, task["n_train"] or 1000, n_in, seed, law=task["inputs"])
    test = datasets.teacher_student(teacher, task["n_test"] or 200, n_in, seed + 1, law=task["inputs"])
    return Task(train.x, train.y, test.x, test.y, None)
