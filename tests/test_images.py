"""Reading user images for `deepnotes predict`: formats, conversions, notes, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepnotes.errors import UserError
from deepnotes.images import INVERT_NOTE, background_note, load_image


def _digit(bg: int, fg: int, size=(40, 30)) -> np.ndarray:
    """A (H, W) uint8 image: background `bg` with a centered square of `fg`."""
    w, h = size
    a = np.full((h, w), bg, dtype=np.uint8)
    a[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = fg
    return a


def _joined(notes: list[str]) -> str:
    return " | ".join(notes)


@pytest.mark.parametrize("ext", ["png", "jpg", "bmp", "gif", "tiff", "webp"])
def test_formats_to_gray(tmp_path, ext):
    p = tmp_path / f"digit.{ext}"
    Image.fromarray(_digit(0, 255)).save(p)
    x, notes = load_image(p, in_chans=1, img_size=(28, 28))
    assert x.shape == (1, 28, 28) and x.dtype == np.uint8
    assert x.flags.c_contiguous
    assert x[0, 14, 14] > 200 and x[0, 1, 1] < 30  # light object stays light, no inversion
    assert not any("invert" in n for n in notes)


def test_rgb_to_gray_and_resize_notes(tmp_path):
    p = tmp_path / "photo.jpg"
    rgb = np.zeros((48, 64, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red: luma 0.299 * 200 ~ 60
    Image.fromarray(rgb).save(p, quality=95)
    x, notes = load_image(p, 1, (28, 28))
    assert x.shape == (1, 28, 28)
    text = _joined(notes)
    assert "converted RGB to grayscale (ITU-R 601 luma)" in text
    assert "padded 64x48 -> 64x64" in text
    assert "resized 64x64 -> 28x28" in text
    assert abs(int(x[0, 14, 14]) - 60) <= 4


def test_no_notes_when_nothing_to_do(tmp_path):
    p = tmp_path / "ok.png"
    Image.fromarray(_digit(0, 255, size=(28, 28))).save(p)
    x, notes = load_image(p, 1, 28)
    assert notes == []
    np.testing.assert_array_equal(x[0], _digit(0, 255, size=(28, 28)))


def test_gray_to_rgb_replicates(tmp_path):
    p = tmp_path / "gray.png"
    Image.fromarray(_digit(10, 250, size=(32, 32))).save(p)
    x, notes = load_image(p, in_chans=3, img_size=(32, 32))
    assert x.shape == (3, 32, 32) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[0], x[1])
    np.testing.assert_array_equal(x[1], x[2])
    assert any("replicated" in n for n in notes)


def test_rgb_kept_for_color_model_with_size_hw(tmp_path):
    p = tmp_path / "wide.png"
    Image.fromarray(np.full((20, 50, 3), (255, 0, 0), dtype=np.uint8)).save(p)
    x, notes = load_image(p, 3, (16, 24))  # (height, width)
    assert x.shape == (3, 16, 24)
    assert x[0, 8, 12] == 255 and x[1, 8, 12] == 0
    # A light (red) border is not inverted for colour models.
    assert not any("invert" in n for n in notes)


def test_white_background_is_inverted(tmp_path):
    p = tmp_path / "drawn.png"
    Image.fromarray(_digit(255, 0)).save(p)
    x, notes = load_image(p, 1, (28, 28))
    assert INVERT_NOTE in notes
    assert x[0, 1, 1] < 30 and x[0, 14, 14] > 200


def test_black_background_not_inverted_and_invert_override(tmp_path):
    p = tmp_path / "dark.png"
    Image.fromarray(_digit(0, 255)).save(p)
    x, notes = load_image(p, 1, (28, 28))
    assert INVERT_NOTE not in notes and x[0, 1, 1] < 30
    forced, notes = load_image(p, 1, (28, 28), invert=True)
    assert forced[0, 1, 1] > 220 and any("invert" in n for n in notes)
    light = tmp_path / "light.png"
    Image.fromarray(_digit(255, 0)).save(light)
    kept, notes = load_image(light, 1, (28, 28), invert=False)
    assert kept[0, 1, 1] > 220 and not any("invert" in n for n in notes)


def test_background_note():
    assert background_note(_digit(255, 0)) == INVERT_NOTE
    assert background_note(_digit(0, 255)) is None
    assert background_note(np.full((1, 1), 200, dtype=np.uint8)) == INVERT_NOTE


def test_rgba_flattened_onto_black(tmp_path):
    p = tmp_path / "alpha.png"
    a = np.zeros((28, 28, 4), dtype=np.uint8)
    a[8:20, 8:20] = (255, 255, 255, 255)  # white square, transparent elsewhere
    Image.fromarray(a, "RGBA").save(p)
    x, notes = load_image(p, 1, (28, 28))
    assert "flattened alpha onto black" in notes
    assert x[0, 0, 0] == 0 and x[0, 14, 14] == 255


def test_dark_strokes_on_transparent_become_light_on_black(tmp_path):
    p = tmp_path / "ink.png"
    a = np.zeros((28, 28, 4), dtype=np.uint8)
    a[8:20, 8:20] = (0, 0, 0, 255)  # black ink, transparent elsewhere
    Image.fromarray(a, "RGBA").save(p)
    x, notes = load_image(p, 1, (28, 28))
    assert any("onto white" in n for n in notes) and INVERT_NOTE in notes
    assert x[0, 0, 0] == 0 and x[0, 14, 14] == 255


def test_palette_and_animated_gif(tmp_path):
    p = tmp_path / "pal.png"
    Image.fromarray(_digit(0, 255)).convert("RGB").convert("P").save(p)
    x, notes = load_image(p, 1, (28, 28))
    assert x.shape == (1, 28, 28) and any("palette" in n for n in notes)

    g = tmp_path / "anim.gif"
    frames = [Image.fromarray(_digit(0, 255)), Image.fromarray(_digit(0, 128))]
    frames[0].save(g, save_all=True, append_images=frames[1:], duration=100)
    x, notes = load_image(g, 1, (28, 28))
    assert any("first of 2 frames" in n for n in notes)
    assert x[0, 14, 14] > 200  # the first frame, not the second


def test_16bit_png(tmp_path):
    p = tmp_path / "deep.png"
    Image.fromarray(_digit(0, 255).astype(np.uint16) * 257).save(p)
    x, notes = load_image(p, 1, (28, 28))
    assert x.dtype == np.uint8 and x.max() > 200
    assert any("16-bit" in n for n in notes)


def test_errors_name_the_file(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello, not an image\n")
    with pytest.raises(UserError, match=r"notes\.txt is not an image.*PNG, JPEG") as e:
        load_image(txt, 1, (28, 28))
    assert "\n" not in str(e.value)

    with pytest.raises(UserError, match="missing.png does not exist"):
        load_image(tmp_path / "missing.png", 1, (28, 28))
    with pytest.raises(UserError, match="is a directory"):
        load_image(tmp_path, 1, (28, 28))

    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"cut\.png is a damaged or truncated PNG") as e:
        load_image(cut, 1, (28, 28))
    assert "\n" not in str(e.value)

    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="empty.jpg"):
        load_image(empty, 1, (28, 28))


def test_decompression_bomb_is_user_error(tmp_path, monkeypatch):
    p = tmp_path / "big.png"
    Image.new("L", (100, 100)).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UserError, match="big.png is too large"):
        load_image(p, 1, (28, 28))


def test_fifo_and_devices_are_refused_without_opening_them(tmp_path):
    # Opening a FIFO blocks until a writer comes; load_image ran in a thread so that the old,
    # blocking behaviour fails this test (after a writer is let in) instead of hanging it.
    import os
    import threading

    fifo = tmp_path / "image.png"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            load_image(fifo, 1, (28, 28))
        except UserError as e:
            outcome.append(str(e))

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(timeout=10)
    blocked = t.is_alive()
    if blocked:
        with open(fifo, "wb"):  # unblock the reader
            pass
        t.join(timeout=10)
    assert not blocked, "load_image blocked on a FIFO"
    assert outcome and "image.png is a FIFO (named pipe), not an image file; give a regular image file" in outcome[0]
    if Path("/dev/null").exists():
        with pytest.raises(UserError, match="/dev/null is a device, not an image file"):
            load_image("/dev/null", 1, (28, 28))
