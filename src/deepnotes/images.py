"""Read a user's image file and turn it into what a trained model expects.

    x, notes = load_image("digit.jpg", in_chans=1, img_size=(28, 28))
    x.shape, x.dtype      # (1, 28, 28), uint8
    notes                 # ["converted RGB to grayscale (ITU-R 601 luma)", "padded ...", ...]

Every conversion is reported in `notes` so `deepnotes predict` can say what the model
actually saw. Sizes in notes are written width x height, as image viewers do; `img_size`
and the returned array are (height, width) like the datasets.

MNIST and Fashion-MNIST are light objects on a black background, while a drawing or a
photo of a digit is usually dark on white; for one-channel models a light background is
detected from the image's border and inverted (see `background_note`).

Anything that is not a readable image (missing file, directory, FIFO or device, text file,
truncated or corrupt data, a decompression bomb) is a one-line UserError naming the file.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np

from deepnotes.errors import UserError

WORKING_FORMATS = "PNG, JPEG, BMP, GIF, TIFF, WebP work"
INVERT_NOTE = "inverted: the image has a light background, the training data has a dark one"


def _border(gray: np.ndarray) -> np.ndarray:
    """The pixels of the outer ring (about 5% of the short side, at least 1 pixel)."""
    h, w = gray.shape[:2]
    b = max(1, min(h, w) // 20)
    mask = np.zeros((h, w), dtype=bool)
    mask[:b, :] = mask[-b:, :] = True
    mask[:, :b] = mask[:, -b:] = True
    return gray[mask]


def background_note(gray: np.ndarray) -> str | None:
    """Return the inversion note if the image has a light background, else None.

    `gray` is a (H, W) uint8 grayscale image; its background counts as light when the mean
    of its border pixels is above 127. The training data (MNIST, Fashion-MNIST) has a dark
    background, so such an image should be inverted before it is shown to the model.
    """
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a (H, W) grayscale image, got shape {gray.shape}")
    return INVERT_NOTE if float(_border(gray).mean()) > 127 else None


def _check_regular(path: Path) -> None:
    """A UserError unless `path` is a regular file (after symlinks), decided without opening it:
    opening a FIFO blocks until a writer comes, and a device may never end."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    if stat.S_ISREG(mode):
        return
    kind = (
        "a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
        else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
    )  # fmt: skip
    raise UserError(f"{path} is {kind}, not an image file; give a regular image file ({WORKING_FORMATS})")


def _open(path: Path):
    """Open `path` with Pillow and decode its first frame; raise UserError on any failure."""
    from PIL import Image

    _check_regular(path)
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; treat both as too large.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise UserError(f"{path} is too large to decode safely: {_one_line(e)}") from None
        except PermissionError:
            raise UserError(f"cannot read {path}: permission denied") from None
        except Exception:  # UnidentifiedImageError, or a plugin choking on the header
            raise UserError(
                f"{path} is not an image Pillow can read ({WORKING_FORMATS})"
            ) from None
        fmt = img.format or "image"
        try:
            n_frames = getattr(img, "n_frames", 1)
            if n_frames > 1:
                img.seek(0)
            img.load()
        except Exception as e:  # truncated/corrupt data: OSError, SyntaxError, EOFError...
            img.close()
            raise UserError(
                f"{path} is a damaged or truncated {fmt} file ({_one_line(e)}); "
                f"re-save it as PNG or JPEG"
            ) from None
    return img, fmt, n_frames


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _exif_upright(img, notes: list[str]):
    """Apply the EXIF orientation tag (phone photos are often stored rotated)."""
    from PIL import ImageOps

    try:
        orientation = img.getexif().get(0x0112, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            img = ImageOps.exif_transpose(img)
            notes.append(f"rotated/flipped upright as the EXIF orientation tag ({orientation}) says")
    except Exception:  # a broken EXIF block is not worth failing over
        pass
    return img


def _flatten_alpha(img, notes: list[str]):
    """Composite an image with alpha over black (white if the visible pixels are dark)."""
    from PIL import Image

    gray_like = img.mode in ("LA", "La")
    img = img.convert("LA" if gray_like else "RGBA")
    arr = np.asarray(img, dtype=np.float64)
    color, alpha = arr[..., :-1], arr[..., -1:] / 255.0
    if alpha.min() >= 1.0:
        notes.append("dropped the alpha channel (the image is fully opaque)")
        bg = 0.0
    else:
        opaque = alpha[..., 0] > 0.5
        luma = color.mean(axis=-1) if not gray_like else color[..., 0]
        if opaque.any() and float(luma[opaque].mean()) < 100:
            bg = 255.0
            notes.append("flattened alpha onto white (the visible pixels are dark and "
                         "would vanish on black)")
        else:
            bg = 0.0
            notes.append("flattened alpha onto black")
    out = np.clip(np.rint(color * alpha + bg * (1.0 - alpha)), 0, 255).astype(np.uint8)
    return Image.fromarray(out[..., 0] if gray_like else out, "L" if gray_like else "RGB")


def _scale_to_8bit(img, notes: list[str]):
    """Map 16/32-bit integer or float images to 0..255 ("L")."""
    from PIL import Image

    arr = np.asarray(img, dtype=np.float64)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if img.mode == "F" and lo >= 0 and hi <= 1:
        arr = arr * 255.0
        notes.append("scaled floating-point values 0..1 to 0..255")
    elif img.mode != "F" and lo >= 0 and hi <= 255:
        pass
    elif img.mode != "F" and lo >= 0 and hi <= 65535:
        arr = arr / 257.0
        notes.append("scaled 16-bit values to 8 bits")
    else:
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        notes.append(f"stretched values {lo:g}..{hi:g} to 0..255")
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


def _to_l_or_rgb(img, notes: list[str]):
    """Bring any Pillow mode to "L" or "RGB", noting what was done."""
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode == "1":
        notes.append("converted 1-bit black-and-white to 8-bit grayscale")
        return img.convert("L")
    if mode == "P":
        if "transparency" in img.info:
            return _flatten_alpha(img.convert("RGBA"), notes)
        notes.append("expanded the palette (indexed colour) image to RGB")
        return img.convert("RGB")
    if mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        return _flatten_alpha(img if mode != "PA" else img.convert("RGBA"), notes)
    if mode in ("I", "F") or mode.startswith("I;"):
        return _scale_to_8bit(img, notes)
    try:
        out = img.convert("RGB")
    except Exception:
        raise UserError(
            f"{getattr(img, 'filename', 'the image')} uses the colour mode {mode}, which cannot "
            f"be converted to RGB; re-save it as an 8-bit RGB PNG or JPEG"
        ) from None
    notes.append(f"converted {mode} to RGB")
    return out


def _to_channels(img, in_chans: int, notes: list[str]):
    if in_chans == 1 and img.mode == "RGB":
        arr = np.asarray(img)
        if (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
            notes.append("read the RGB image as grayscale (its three channels are equal)")
        else:
            notes.append("converted RGB to grayscale (ITU-R 601 luma)")
        return img.convert("L")
    if in_chans == 3 and img.mode == "L":
        notes.append("replicated the grayscale channel to R, G and B")
        return img.convert("RGB")
    return img


def _fit(img, size_hw: tuple[int, int], notes: list[str]):
    """Pad to the target aspect ratio with the border colour, then resize (Lanczos)."""
    from PIL import Image

    th, tw = size_hw
    w, h = img.size
    if (w, h) == (tw, th):
        return img
    # Pad the short side so the content keeps its shape (a stretched digit looks wrong).
    if w * th > h * tw:
        pw, ph = w, round(w * th / tw)
    else:
        pw, ph = round(h * tw / th), h
    if (pw, ph) != (w, h):
        arr = np.asarray(img)
        fill = np.median(_border(arr).reshape(-1, 1 if arr.ndim == 2 else arr.shape[2]), axis=0)
        fill = tuple(int(round(v)) for v in fill)
        canvas = Image.new(img.mode, (pw, ph), fill[0] if img.mode == "L" else fill)
        canvas.paste(img, ((pw - w) // 2, (ph - h) // 2))
        notes.append(f"padded {w}x{h} -> {pw}x{ph} with the border colour to keep the aspect ratio")
        img = canvas
    if (pw, ph) != (tw, th):
        img = img.resize((tw, th), Image.Resampling.LANCZOS)
        notes.append(f"resized {pw}x{ph} -> {tw}x{th} (Lanczos)")
    return img


def load_image(
    path: str | os.PathLike,
    in_chans: int,
    img_size: tuple[int, int] | int,
    invert: bool | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Read an image file as a model input: uint8 array (in_chans, H, W) and notes.

    Any format Pillow reads works (PNG, JPEG, BMP, GIF - first frame -, TIFF, WebP, ...).
    Steps, each reported in the notes when it changes something: first frame of an
    animation, EXIF orientation, palette/1-bit/16-bit/CMYK... to 8-bit L or RGB, alpha
    flattened (onto black, or white when the visible pixels are dark), RGB -> grayscale
    (ITU-R 601 luma) or grayscale -> RGB (channel replicated), padding to the target aspect
    ratio with the border colour, resizing (Lanczos), inversion.

    `img_size` is (height, width) or one int for a square. `invert`: True/False forces it;
    None (auto) inverts one-channel inputs whose border is mostly light (mean > 127), since
    the one-channel training sets have dark backgrounds. Colour models (in_chans=3, trained
    on photos) are not auto-inverted. Unreadable files raise UserError naming the file.
    """
    if in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 or 3, got {in_chans}")
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    size_hw = (int(img_size[0]), int(img_size[1]))
    if min(size_hw) < 1:
        raise ValueError(f"img_size must be positive, got {img_size}")

    path = Path(path)
    notes: list[str] = []
    img, _fmt, n_frames = _open(path)
    src = img
    try:
        if n_frames > 1:
            notes.append(f"used the first of {n_frames} frames")
        img = _exif_upright(img, notes)
        img = _to_l_or_rgb(img, notes)
        inv_note = None
        if invert is None and in_chans == 1:
            inv_note = background_note(np.asarray(img.convert("L")))
        elif invert:
            inv_note = "inverted the image (asked for)"
        img = _to_channels(img, in_chans, notes)
        img = _fit(img, size_hw, notes)
        arr = np.asarray(img, dtype=np.uint8)
    finally:
        src.close()

    if inv_note:
        arr = 255 - arr
        notes.append(inv_note)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr), notes
