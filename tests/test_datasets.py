import math

import numpy as np
import pytest

from neurosim.datasets import (
    Dataset,
    digits,
    mlp_teacher,
    mnist_idx,
    one_hot_targets,
    read_idx,
    teacher_student,
    write_idx,
    yin_yang,
    yin_yang_class,
    yin_yang_splits,
)


def reference_class(px, py):
    """Scalar re-statement of the Yin-Yang rule with r_small = 0.1, r_big = 0.5."""
    right = math.dist((px, py), (0.75, 0.5))
    left = math.dist((px, py), (0.25, 0.5))
    if right < 0.1 or left < 0.1:
        return 2
    if right <= 0.1 or 0.1 < left <= 0.25 or (py > 0.5 and right > 0.25):
        return 1
    return 0


def test_yin_yang_features_geometry_and_labels():
    data = yin_yang(600, seed=3)
    assert data.x.shape == (600, 4) and data.x.dtype == np.float64
    assert data.n_classes == 3 and len(data) == 600
    np.testing.assert_array_equal(data.x[:, 2], 1 - data.x[:, 0])
    np.testing.assert_array_equal(data.x[:, 3], 1 - data.x[:, 1])
    assert np.all(np.hypot(data.x[:, 0] - 0.5, data.x[:, 1] - 0.5) <= 0.5)
    expected = [reference_class(px, py) for px, py in data.x[:, :2]]
    np.testing.assert_array_equal(data.labels, expected)


def test_yin_yang_class_frequencies():
    labels = yin_yang(3000, seed=0).labels
    np.testing.assert_allclose(np.bincount(labels, minlength=3) / 3000, 1 / 3, atol=0.05)


def test_yin_yang_seeds_and_splits():
    np.testing.assert_array_equal(yin_yang(200, seed=7).x, yin_yang(200, seed=7).x)
    assert not np.array_equal(yin_yang(200, seed=7).x, yin_yang(200, seed=8).x)
    train, val, test = yin_yang_splits(seed=1, sizes=(300, 100, 100))
    assert (len(train), len(val), len(test)) == (300, 100, 100)
    assert not np.array_equal(train.x[:100], val.x)
    assert not np.array_equal(val.x, test.x)


@pytest.mark.parametrize(
    "point, cls",
    [
        ((0.80, 0.5), 2),  # d_r = 0.05 < r_small: right dot
        ((0.25, 0.5), 2),  # centre of the left dot
        ((0.5, 0.9), 1),  # y > 0.5, d_r = 0.47 > 0.25: yin
        ((0.5, 0.1), 0),  # d_l = 0.47 > 0.25, y < 0.5: yang
        ((0.25, 0.7), 1),  # d_l = 0.2 in (0.1, 0.25]: yin around the left dot
        ((0.25, 0.3), 1),  # same, below the centre line
        ((0.75, 0.7), 0),  # d_r = 0.2 <= 0.25, d_l = 0.54: yang around the right dot
        ((0.75, 0.3), 0),
    ],
)
def test_yin_yang_known_points(point, cls):
    assert yin_yang_class(*point) == cls


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": 5.5}, {"seed": -1}, {"r_small": 0.3}, {"r_big": 0.7}])
def test_yin_yang_rejects_bad_arguments(kwargs):
    args = {"n": 10, "seed": 0, **kwargs}
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        yin_yang(**args)


def test_digits_split():
    train, test = digits(seed=0, test_fraction=0.2)
    assert len(train) + len(test) == 1797
    assert len(test) == round(0.2 * 1797)
    for part in (train, test):
        assert part.x.shape[1] == 64 and part.n_classes == 10
        assert part.x.min() >= 0 and part.x.max() <= 1
    assert set(np.concatenate([train.labels, test.labels])) == set(range(10))
    assert train.x.max() == 1.0
    np.testing.assert_array_equal(digits(seed=0)[1].x, test.x)
    assert not np.array_equal(digits(seed=1)[1].x, test.x)


def test_teacher_student_with_mlp_teacher():
    teacher = mlp_teacher([3, 5, 2], seed=4)
    data = teacher_student(teacher, n=50, n_in=3, seed=9, low=-1.0, high=2.0)
    assert data.x.shape == (50, 3) and data.y.shape == (50, 2) and data.labels is None
    assert data.x.min() >= -1.0 and data.x.max() < 2.0
    np.testing.assert_array_equal(data.y, teacher(data.x))
    again = teacher_student(mlp_teacher([3, 5, 2], seed=4), n=50, n_in=3, seed=9, low=-1.0, high=2.0)
    np.testing.assert_array_equal(again.x, data.x)
    np.testing.assert_array_equal(again.y, data.y)
    assert not np.array_equal(mlp_teacher([3, 5, 2], seed=5)(data.x), data.y)


def test_mlp_teacher_equation():
    f = mlp_teacher([2, 3, 1], seed=0, activation=lambda h: np.maximum(h, 0), weight_scale=0.5)
    x = np.array([[0.2, -0.4]])
    rng = np.random.default_rng(0)
    w1, w2 = rng.uniform(-0.5, 0.5, size=(2, 3)), rng.uniform(-0.5, 0.5, size=(3, 1))
    np.testing.assert_allclose(f(x), np.maximum(x @ w1, 0) @ w2)
    with pytest.raises(ValueError, match="weight_scale"):
        mlp_teacher([2, 1], seed=0, weight_scale=0)


def test_teacher_student_rejects_bad_teacher_output():
    with pytest.raises(ValueError, match="teacher"):
        teacher_student(lambda x: x.sum(axis=1), n=4, n_in=2, seed=0)


def test_one_hot_targets():
    targets = one_hot_targets(np.array([2, 0]), 3, on=0.9, off=0.1)
    np.testing.assert_array_equal(targets, [[0.1, 0.1, 0.9], [0.9, 0.1, 0.1]])
    with pytest.raises(ValueError, match="labels"):
        one_hot_targets(np.array([3]), 3)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_idx_round_trip(tmp_path, dtype):
    array = (np.arange(2 * 3 * 4) * 7 % 251).reshape(2, 3, 4).astype(dtype)
    path = tmp_path / "a.idx"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == dtype and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_idx_is_big_endian(tmp_path):
    path = tmp_path / "b.idx"
    write_idx(path, np.array([1, 258], dtype=np.int32))
    assert path.read_bytes() == bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 2])


def test_idx_truncated_and_bad_magic(tmp_path):
    path = tmp_path / "cut.idx"
    write_idx(path, np.zeros((4, 5), dtype=np.float32))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="cut.idx"):
        read_idx(path)
    bad = tmp_path / "magic.idx"
    bad.write_bytes(bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(ValueError, match="magic.idx.*magic"):
        read_idx(bad)
    unknown = tmp_path / "code.idx"
    unknown.write_bytes(bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(ValueError, match="code.idx.*dtype"):
        read_idx(unknown)


def test_mnist_idx(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 3, 4), dtype=np.uint8)
    images[0, 0, 0], images[1, 0, 0] = 0, 255
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_idx(tmp_path / "img", images)
    write_idx(tmp_path / "lab", labels)
    data = mnist_idx(tmp_path / "img", tmp_path / "lab")
    assert data.x.shape == (5, 12) and data.x.min() == 0.0 and data.x.max() == 1.0
    np.testing.assert_allclose(data.x, images.reshape(5, 12) / 255)
    np.testing.assert_array_equal(data.labels, labels)
    write_idx(tmp_path / "short", labels[:4])
    with pytest.raises(ValueError, match="5 images but 4 labels"):
        mnist_idx(tmp_path / "img", tmp_path / "short")


def test_dataset_rejects_nan_and_mismatch():
    x = np.zeros((4, 2))
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match="toy: x contains NaN or inf at row 2"):
        Dataset(x=x, labels=None, y=None, name="toy", n_classes=None)
    with pytest.raises(ValueError, match="labels"):
        Dataset(x=np.zeros((4, 2)), labels=np.zeros(3, dtype=int), y=None, name="toy", n_classes=2)


def test_dataset_subset():
    data = Dataset(x=np.arange(8.0).reshape(4, 2), labels=np.array([0, 1, 0, 1]), y=None, name="toy", n_classes=2)
    part = data.subset([3, 1])
    np.testing.assert_array_equal(part.x, [[6.0, 7.0], [2.0, 3.0]])
    np.testing.assert_array_equal(part.labels, [1, 1])
    assert part.name == "toy" and part.n_classes == 2 and len(part) == 2
