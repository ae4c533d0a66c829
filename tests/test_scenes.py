"""Scenes for dense prediction: masks, images and boxes against a plain per-item loop (the
oracle), overlap control, determinism, train/test separation, the registered loaders."""

from __future__ import annotations

import numpy as np
import pytest

from deepnotes.data import DATASETS, ImageData, load_dataset, sources
from deepnotes.data.idx import write_idx
from deepnotes.data.scenes import FASHION_SCENES, SceneData, SceneDataset, generate_scenes, make_scene_dataset

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def blobs(n: int, value: int, seed: int, size: int = 12, chans: int = 1) -> np.ndarray:
    """Items: a random blob of `value` on a dark (< 32) noisy square, so masks have odd shapes and faint edges."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 20, (n, chans, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx, r = rng.uniform(3, size - 3, 2).tolist() + [rng.uniform(2, size / 2)]
        x[i, :, (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = value
    return x


def oracle(scenes: SceneData, x: np.ndarray, y: np.ndarray, threshold: int, scale: int):
    """Rebuild every scene from its placements and the source pixels, one item at a time."""
    n, C, H, W = scenes.images.shape
    images, masks, boxes = np.zeros_like(scenes.images), np.zeros((n, H, W), np.int64), []
    for i, places in enumerate(scenes.placements):
        owner = np.full((H, W), -1)
        items = [x[s].repeat(scale, 1).repeat(scale, 2) for s, _, _ in places]
        for (s, t, l), it in zip(places, items):  # faint edges: the brightest pixel
            win = images[i, :, t : t + it.shape[1], l : l + it.shape[2]]
            win[...] = np.maximum(win, it)
        for j, ((s, t, l), it) in enumerate(zip(places, items)):  # masks: the last pasted wins
            m = it.max(0) > threshold
            images[i, :, t : t + it.shape[1], l : l + it.shape[2]][:, m] = it[:, m]
            masks[i, t : t + it.shape[1], l : l + it.shape[2]][m] = y[s] + 1
            owner[t : t + it.shape[1], l : l + it.shape[2]][m] = j
        b = []
        for j, (s, _, _) in enumerate(places):
            rows, cols = np.nonzero(owner == j)
            b.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1, y[s] + 1])
        boxes.append(np.array(b, np.int64).reshape(-1, 5))
    return images, masks, boxes


def item_masks(scenes: SceneData, x: np.ndarray, i: int, threshold: int, scale: int) -> np.ndarray:
    """(n_i, H, W) bool: each item's whole mask where it was pasted (hidden parts included)."""
    H, W = scenes.masks.shape[1:]
    out = np.zeros((len(scenes.placements[i]), H, W), bool)
    for j, (s, t, l) in enumerate(scenes.placements[i]):
        m = x[s].max(0).repeat(scale, 0).repeat(scale, 1) > threshold
        out[j, t : t + m.shape[0], l : l + m.shape[1]] = m
    return out


# --------------------------------------------------------------------------- construction


def test_digit_scenes_match_the_per_item_oracle_exactly(digits):
    s = generate_scenes(digits, 150, canvas=64, items_per_scene=(0, 4), seed=3, scale=3)
    images, masks, boxes = oracle(s, digits.train_x, digits.train_y, 32, 3)
    assert s.images.dtype == np.uint8 and s.masks.dtype == np.uint8 and s.images.shape == (150, 1, 64, 64)
    np.testing.assert_array_equal(s.images, images)
    np.testing.assert_array_equal(s.masks, masks)
    for got, want in zip(s.boxes, boxes):
        np.testing.assert_array_equal(got, want)
    assert s.classes == ("background", *digits.classes)
    # every count 0..4 occurs, and the union of the masks is the image above the threshold
    assert set(len(b) for b in s.boxes) == {0, 1, 2, 3, 4}
    np.testing.assert_array_equal(s.images.max(1) > 32, s.masks > 0)


def test_no_overlap_masks_disjoint_and_boxes_tight_around_each_item(digits):
    s = generate_scenes(digits, 150, canvas=64, items_per_scene=(2, 4), overlap=0.0, seed=5, scale=3)
    squares_overlap = 0
    for i in range(len(s)):
        m = item_masks(s, digits.train_x, i, 32, 3)
        assert m.sum(0).max() <= 1  # no pixel in two masks
        for j, box in enumerate(s.boxes[i]):
            rows, cols = np.nonzero(m[j])  # the item's whole mask: nothing of it is hidden
            label = digits.train_y[s.placements[i][j, 0]] + 1
            assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1, label]
            assert (s.masks[i][m[j]] == box[4]).all()  # all of it visible, with its class
        p = s.placements[i]
        for a in range(len(p)):
            for b in range(a):
                squares_overlap += abs(p[a, 1] - p[b, 1]) < 24 and abs(p[a, 2] - p[b, 2]) < 24
    assert squares_overlap > 0  # disjoint masks, not disjoint squares: dark corners may overlap


def test_overlap_is_bounded_and_used():
    rng_x = blobs(40, 200, seed=0, size=20)
    src = ImageData("blobs", rng_x, np.arange(40) % 3, rng_x[:5], np.zeros(5, np.int64), ("a", "b", "c"), "test")
    s = generate_scenes(src, 300, canvas=40, items_per_scene=(3, 5), overlap=0.4, seed=1)
    images, masks, boxes = oracle(s, src.train_x, src.train_y, 32, 1)
    np.testing.assert_array_equal(s.images, images)
    np.testing.assert_array_equal(s.masks, masks)
    worst = 0.0
    for i in range(len(s)):
        for got, want in zip(s.boxes[i], boxes[i]):
            np.testing.assert_array_equal(got, want)  # tight around the visible part
        m = item_masks(s, src.train_x, i, 32, 1)
        for j in range(len(m)):
            hidden = (m[j] & m[j + 1 :].any(0)).sum()  # covered by the items pasted after it
            assert hidden <= np.floor(0.4 * m[j].sum())
            worst = max(worst, hidden / m[j].sum())
    assert worst > 0.25  # the allowance is really used


def test_deterministic_by_seed(digits):
    a = generate_scenes(digits, 50, items_per_scene=(1, 3), overlap=0.2, seed=7, scale=3)
    b = generate_scenes(digits, 50, items_per_scene=(1, 3), overlap=0.2, seed=7, scale=3)
    c = generate_scenes(digits, 50, items_per_scene=(1, 3), overlap=0.2, seed=8, scale=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert all(np.array_equal(p, q) for p, q in zip(a.placements, b.placements))
    assert not np.array_equal(a.images, c.images)


def test_train_scenes_use_only_train_items_and_test_scenes_only_test_items():
    # train items are blobs of 100, test items blobs of 200: a scene's bright pixels say its split
    train_x, test_x = blobs(30, 100, seed=1), blobs(20, 200, seed=2)
    src = ImageData("two", train_x, np.arange(30) % 2, test_x, np.arange(20) % 2, ("a", "b"), "test")
    data = make_scene_dataset(src, 40, 30, canvas=32, items_per_scene=(1, 2), seed=0)
    assert isinstance(data, SceneDataset) and data.num_classes == 3
    assert set(np.unique(data.train_x)) - set(range(32)) == {100}
    assert set(np.unique(data.test_x)) - set(range(32)) == {200}
    assert max(p[:, 0].max() for p in data.train.placements) < 30
    # same seed, different split streams
    assert not np.array_equal(data.train.placements[0], data.test.placements[0])


def test_multichannel_items_mask_from_any_channel():
    x = np.zeros((4, 3, 6, 6), np.uint8)
    x[:, 1, 2:4, 1:5] = 90  # only the green channel is bright
    src = ImageData("rgb", x, np.arange(4) % 2, x, np.arange(4) % 2, ("a", "b"), "test")
    s = generate_scenes(src, 10, canvas=12, items_per_scene=(1, 1), seed=0)
    for i in range(10):
        x0, y0, x1, y1, c = s.boxes[i][0]
        assert (x1 - x0, y1 - y0) == (4, 2)
        assert (s.masks[i] > 0).sum() == 8 and (s.images[i, 1] == 90).sum() == 8


def test_bad_options_are_clear_errors(digits):
    with pytest.raises(ValueError, match="do not fit on a 20x20 canvas"):
        generate_scenes(digits, 2, canvas=20, scale=3)
    with pytest.raises(ValueError, match="0 <= overlap < 1"):
        generate_scenes(digits, 2, overlap=1.0, scale=3)
    with pytest.raises(ValueError, match="min <= max"):
        generate_scenes(digits, 2, items_per_scene=(3, 1), scale=3)
    with pytest.raises(ValueError, match="'train' or 'test'"):
        generate_scenes(digits, 2, split="val", scale=3)


# --------------------------------------------------------------------------- registered loaders


def test_fashion_scenes_loader_from_idx_files(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(FASHION_SCENES, "n_train", 60)
    monkeypatch.setitem(FASHION_SCENES, "n_test", 20)
    arrays = (blobs(20, 150, 3, size=28)[:, 0], np.arange(20) % 10, blobs(10, 150, 4, size=28)[:, 0], np.arange(10) % 10)
    (tmp_path / "fm").mkdir()
    for name, a in zip(IDX_NAMES, arrays):
        write_idx(tmp_path / "fm" / (name + ".gz"), np.asarray(a, np.uint8))
    assert DATASETS.get("fashion-scenes").kind == "scenes"
    data = load_dataset("fashion-scenes", data_dir=tmp_path / "fm", download=False)
    assert data.train_x.shape == (60, 1, 64, 64) and data.test_y.shape == (20, 64, 64)
    assert data.classes[0] == "background" and data.classes[1] == "T-shirt/top" and data.num_classes == 11
    assert data.in_chans == 1 and data.img_size == (64, 64) and len(data.train_boxes) == 60


def test_digit_scenes_loader():
    data = load_dataset("digit-scenes")
    assert (len(data.train), len(data.test)) == (2000, 500) and data.num_classes == 11
    # few items are left out for lack of room: at least 95% of the drawn items are there
    assert sum(len(b) for b in data.train_boxes) >= 0.95 * 2 * 2000
