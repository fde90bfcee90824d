"""Datasets: Yin-Yang, sklearn digits, teacher-student regression and MNIST IDX files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _check_int(name: str, value, minimum: int) -> int:
    """Return `value` as int if it is an integer >= minimum, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _first_bad_row(a: np.ndarray) -> int | None:
    """Index of the first row of a 2-D array holding NaN or inf, or None."""
    bad = np.flatnonzero(~np.isfinite(a).all(axis=1))
    return int(bad[0]) if bad.size else None


@dataclass(frozen=True)
class Dataset:
    """Inputs x (n, n_in), integer labels (n,) or None, regression targets y (n, n_out) or None."""

    x: np.ndarray
    labels: np.ndarray | None
    y: np.ndarray | None
    name: str
    n_classes: int | None

    def __post_init__(self):
        for field in ("x", "labels", "y"):
            if getattr(self, field) is not None:
                object.__setattr__(self, field, np.asarray(getattr(self, field)))
        x = self.x
        if x.ndim != 2:
            raise ValueError(f"{self.name}: x must be 2-D, got shape {x.shape}")
        row = _first_bad_row(x)
        if row is not None:
            raise ValueError(f"{self.name}: x contains NaN or inf at row {row}")
        if self.labels is not None and self.labels.shape != (len(x),):
            raise ValueError(f"{self.name}: labels shape {self.labels.shape} does not match {len(x)} rows of x")
        y = self.y
        if y is not None:
            if y.ndim != 2 or len(y) != len(x):
                raise ValueError(f"{self.name}: y shape {y.shape} does not match {len(x)} rows of x")
            row = _first_bad_row(y)
            if row is not None:
                raise ValueError(f"{self.name}: y contains NaN or inf at row {row}")

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, idx) -> "Dataset":
        """The rows x[idx] (with matching labels and y), same name and n_classes."""
        idx = np.asarray(idx)
        if not (idx.dtype == bool or np.issubdtype(idx.dtype, np.integer)):
            raise ValueError(f"idx must be integer or boolean indices, got dtype {idx.dtype}")
        return Dataset(
            x=self.x[idx],
            labels=None if self.labels is None else self.labels[idx],
            y=None if self.y is None else self.y[idx],
            name=self.name,
            n_classes=self.n_classes,
        )


def yin_yang_class(x, y, r_small: float = 0.1, r_big: float = 0.5) -> np.ndarray:
    """Yin-Yang class of points (x, y); dots at (0.5 +- r_big/2, 0.5).

    2 (dot) if d_r < r_small or d_l < r_small; else 1 (yin) if d_r <= r_small
    or r_small < d_l <= r_big/2 or (y > 0.5 and d_r > r_big/2); else 0 (yang).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    d_r = np.hypot(x - (0.5 + r_big / 2), y - 0.5)
    d_l = np.hypot(x - (0.5 - r_big / 2), y - 0.5)
    dot = (d_r < r_small) | (d_l < r_small)
    yin = (d_r <= r_small) | ((d_l > r_small) & (d_l <= r_big / 2)) | ((y > 0.5) & (d_r > r_big / 2))
    return np.where(dot, 2, np.where(yin, 1, 0))


def yin_yang(n: int, seed: int, r_small: float = 0.1, r_big: float = 0.5) -> Dataset:
    """Yin-Yang dataset (Kriener, Goeltz, Petrovici 2021): features (x, y, 1-x, 1-y).

    Each sample draws a class c uniformly from {0, 1, 2}, then (x, y) ~ U[0,1]^2
    until the point lies within r_big of (0.5, 0.5) and has class c.
    """
    n = _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)
    if not 0 < r_big <= 0.5:
        raise ValueError(f"r_big must be in (0, 0.5], got {r_big!r}")
    if not 0 < r_small < r_big / 2:
        raise ValueError(f"r_small must be in (0, r_big/2), got {r_small!r}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    points = np.empty((n, 2))
    for c in range(3):
        slots = np.flatnonzero(labels == c)
        filled = 0
        while filled < len(slots):
            cand = rng.random((20 * (len(slots) - filled) + 100, 2))
            inside = np.hypot(cand[:, 0] - 0.5, cand[:, 1] - 0.5) <= r_big
            keep = cand[inside & (yin_yang_class(cand[:, 0], cand[:, 1], r_small, r_big) == c)]
            keep = keep[: len(slots) - filled]
            points[slots[filled : filled + len(keep)]] = keep
            filled += len(keep)
    x = np.column_stack([points, 1.0 - points])
    return Dataset(x=x, labels=labels, y=None, name="yin_yang", n_classes=3)


def yin_yang_splits(seed: int = 0, sizes=(5000, 1000, 1000)) -> tuple[Dataset, Dataset, Dataset]:
    """Train/validation/test Yin-Yang sets drawn with seeds seed, seed+1000, seed+2000."""
    seed = _check_int("seed", seed, 0)
    if len(sizes) != 3:
        raise ValueError(f"sizes must hold 3 sizes (train, validation, test), got {sizes!r}")
    return tuple(yin_yang(size, seed + 1000 * k) for k, size in enumerate(sizes))


def digits(seed: int = 0, test_fraction: float = 0.2) -> tuple[Dataset, Dataset]:
    """sklearn 8x8 digits, pixels / 16 in [0, 1], shuffled with `seed` and split into (train, test)."""
    from sklearn.datasets import load_digits

    seed = _check_int("seed", seed, 0)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    data = load_digits()
    x = data.data.astype(float) / 16.0
    labels = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    if not 0 < n_test < len(x):
        raise ValueError(f"test_fraction {test_fraction!r} leaves an empty train or test set")
    full = Dataset(x=x, labels=labels, y=None, name="digits", n_classes=10)
    return full.subset(order[n_test:]), full.subset(order[:n_test])


def teacher_student(teacher, n: int, n_in: int, seed: int, low=0.0, high=1.0, law: str = "uniform") -> Dataset:
    """Regression set: x ~ U[low, high]^n_in i.i.d. (law "normal": N(0, 1)), y = teacher(x)
    of shape (n, n_out)."""
    if not callable(teacher):
        raise ValueError(f"teacher must be callable, got {teacher!r}")
    n = _check_int("n", n, 1)
    n_in = _check_int("n_in", n_in, 1)
    seed = _check_int("seed", seed, 0)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"need finite low < high, got low={low!r}, high={high!r}")
    if law not in ("uniform", "normal"):
        raise ValueError(f"law must be 'uniform' or 'normal', got {law!r}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(n, n_in)) if law == "uniform" else rng.standard_normal((n, n_in))
    y = np.asarray(teacher(x), dtype=float)
    if y.ndim != 2 or len(y) != n:
        raise ValueError(f"teacher must map ({n}, {n_in}) inputs to ({n}, n_out), got shape {y.shape}")
    return Dataset(x=x, labels=None, y=y, name="teacher_student", n_classes=None)


def mlp_teacher(layers: list[int], seed: int, activation=np.tanh, weight_scale=1.0) -> Callable:
    """Random MLP f(x) = W_L^T phi(... phi(W_1^T x)), W_l ~ U[-weight_scale, weight_scale], no biases."""
    if len(layers) < 2:
        raise ValueError(f"layers must list at least 2 sizes, got {layers!r}")
    layers = [_check_int("layers", size, 1) for size in layers]
    seed = _check_int("seed", seed, 0)
    if not callable(activation):
        raise ValueError(f"activation must be callable, got {activation!r}")
    if not (np.isfinite(weight_scale) and weight_scale > 0):
        raise ValueError(f"weight_scale must be finite and > 0, got {weight_scale!r}")
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-weight_scale, weight_scale, size=shape) for shape in zip(layers[:-1], layers[1:])]

    def f(x) -> np.ndarray:
        h = np.asarray(x, dtype=float)
        if h.ndim != 2 or h.shape[1] != layers[0]:
            raise ValueError(f"x must have shape (n, {layers[0]}), got {h.shape}")
        for w in weights[:-1]:
            h = activation(h @ w)
        return h @ weights[-1]

    return f


def one_hot_targets(labels, n_classes, on=1.0, off=0.1) -> np.ndarray:
    """(n, n_classes) targets: `on` at the true class, `off` elsewhere."""
    n_classes = _check_int("n_classes", n_classes, 1)
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got dtype {labels.dtype}, shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]")
    targets = np.full((len(labels), n_classes), float(off))
    targets[np.arange(len(labels)), labels] = on
    return targets


def read_idx(path) -> np.ndarray:
    """Read an IDX file: bytes 0 0 dtype-code ndim, big-endian uint32 dims, big-endian data."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: bad IDX magic {raw[:4].hex()!r}")
    if raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX dtype code 0x{raw[2]:02X}")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: file has {len(raw)} bytes but its header {dims} needs {expected} (truncated?)")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path, array) -> None:
    """Write `array` as an IDX file (inverse of read_idx)."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("=").str: code for code, dt in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("=").str)
    if code is None:
        raise ValueError(f"array dtype {array.dtype} has no IDX code (use uint8, int8, int16, int32, float32, float64)")
    if array.ndim > 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"array shape {array.shape} does not fit an IDX header")
    with open(path, "wb") as fh:
        fh.write(bytes([0, 0, code, array.ndim]))
        fh.write(np.asarray(array.shape, dtype=">u4").tobytes())
        fh.write(array.astype(_IDX_DTYPES[code]).tobytes())


def mnist_idx(images_path, labels_path, name="mnist") -> Dataset:
    """MNIST-style IDX pair: uint8 images (n, rows, cols) -> x (n, rows*cols) / 255; n_classes = max label + 1."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images (n, rows, cols), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(f"{labels_path}: expected 1-D non-negative integer labels, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels")
    x = images.reshape(len(images), -1) / 255.0
    labels = labels.astype(np.int64)
    n_classes = int(labels.max()) + 1 if labels.size else None
    return Dataset(x=x, labels=labels, y=None, name=name, n_classes=n_classes)
