"""Image datasets from the user's files: MNIST-style IDX pairs and folders of PNG/JPEG images.

- IDX (``{"path": "train-images-idx3-ubyte", "labels": "train-labels-idx1-ubyte"}``, each
  optionally ``.gz``): the format of LeCun's MNIST files, a big-endian header (two zero
  bytes, a type code, the rank, one uint32 per dimension) followed by the values.
  Images (n, H, W) become X (n, 1, H, W); unsigned bytes are scaled to [0, 1].
- Image folders (``{"path": "pets", "size": [32, 32], "grey": true}``): one sub-folder per
  class, named after it; its ``.png``/``.jpg``/``.jpeg`` files are the examples (other
  files are ignored). Read with Pillow, converted to grey (1 channel) or RGB (3), resized
  to ``size`` = [height, width] if given, pixels scaled to [0, 1].

Every way such data can be wrong ends in a DataError naming the file: a truncated IDX
file, a count mismatch, an image Pillow cannot decode, mixed sizes without ``size``, an
empty class folder.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.dataset import DTYPE, Dataset, all_finite
from engine.data.files import check_file, encode_numeric, need_two_classes
from engine.errors import DataError

IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "La"}
MAX_SIDE = 1024


# -- IDX -----------------------------------------------------------------------------------

def looks_like_idx(path: Path) -> bool:
    """Whether a file name is an IDX file's (``…-idx3-ubyte``, ``….idx``, optionally ``.gz``)."""
    name = path.name.lower().removesuffix(".gz")
    return name.endswith("ubyte") or name.endswith(".idx")


def _idx_bytes(path: Path) -> bytes:
    check_file(path)
    try:
        raw = path.read_bytes()
        if path.suffix.lower() == ".gz":
            raw = gzip.decompress(raw)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"{path.name}: is not a complete gzip file ({err}); download it again") from None
    except OSError as err:
        raise DataError(f"{path.name}: cannot read the file ({err})") from None
    return raw


def read_idx(path: Path) -> np.ndarray:
    """The array stored in an IDX file (a read-only view of its bytes)."""
    raw = _idx_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise DataError(f"{path.name}: is not an IDX file (it does not start with the IDX magic number: "
                        "two zero bytes, a type code and the number of dimensions)")
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path.name}: truncated: the file ends inside its header; download it again")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(dims, dtype=np.int64))
    expected, have = count * dtype.itemsize, len(raw) - header
    if have < expected:
        raise DataError(f"{path.name}: truncated: its header announces {'×'.join(map(str, dims))} values "
                        f"({expected:,} bytes) but only {have:,} bytes follow; download it again")
    if have > expected:
        raise DataError(f"{path.name}: {have - expected:,} bytes follow the {'×'.join(map(str, dims))} values "
                        "its header announces; it is not a valid IDX file")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)


def read_idx_dataset(images_path: Path, labels_path: Path) -> Dataset:
    """X (n, 1, H, W) float32 from an IDX image file, y (n,) from its IDX label file."""
    images = read_idx(images_path)
    if images.ndim != 3:
        raise DataError(f"{images_path.name}: holds an array of shape {images.shape}; IDX images must be "
                        "(n, height, width), as train-images-idx3-ubyte")
    labels = read_idx(labels_path)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{labels_path.name}: holds {labels.dtype} values of shape {labels.shape}; IDX labels "
                        "must be (n,) integers, as train-labels-idx1-ubyte")
    if len(labels) != len(images):
        raise DataError(f"{images_path.name} has {len(images):,} images but {labels_path.name} has "
                        f"{len(labels):,} labels; use the label file that belongs to these images")
    if len(images) < 2:
        raise DataError(f"{images_path.name}: {len(images)} image(s); a dataset needs at least 2")
    n, h, w = images.shape
    X = np.empty((n, 1, h, w), DTYPE)
    scale = np.float32(1 / 255) if images.dtype == np.uint8 else np.float32(1)
    np.multiply(images.reshape(n, 1, h, w), scale, out=X, casting="unsafe")
    if not all_finite(X):
        raise DataError(f"{images_path.name}: the images contain NaN or infinity")
    y, names = encode_numeric(labels.astype(np.float64))
    need_two_classes(names, labels_path.name)
    return Dataset(X, y, "classification", images_path.name, [], names, "label")


# -- image folders ---------------------------------------------------------------------------

def image_size(value: Any) -> tuple[int, int] | None:
    """``size`` of a folder spec: None, a side (square) or [height, width], each in [1, 1024]."""
    if value is None:
        return None
    sides = [value, value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(sides, (list, tuple)) or len(sides) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_SIDE for s in sides)):
        raise DataError(f"image folder: 'size' must be [height, width] (integers in [1, {MAX_SIDE}]) or one "
                        f"integer for square images, not {value!r}")
    return int(sides[0]), int(sides[1])


def _class_files(root: Path) -> tuple[list[str], list[list[Path]]]:
    """Class names (sub-folders, sorted) and each one's image files (sorted)."""
    if not root.exists():
        raise DataError(f"{root}: no such folder (dataset paths are relative to the graph file)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root.name}: has no class sub-folders; put the images of each class in a sub-folder "
                        "named after the class (e.g. cat/, dog/)")
    files = []
    for folder in folders:
        found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataError(f"{root.name}/{folder.name}: the class folder holds no images "
                            f"({', '.join(IMAGE_SUFFIXES)}); add some or remove the folder")
        files.append(found)
    names = [f.name for f in folders]
    need_two_classes(names, root.name)
    return names, files


def _open_image(image_module: Any, path: Path, root: Path) -> Any:
    try:
        return image_module.open(path)
    except Exception as err:  # noqa: BLE001 - Pillow reports bad files with many exception types
        raise DataError(f"{path.relative_to(root.parent)}: is not a readable image ({type(err).__name__}: "
                        f"{err}); remove or replace it") from None


def _pixels(image_module: Any, path: Path, root: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """One image as (C, H, W) uint8 after conversion to ``mode`` and resizing."""
    try:
        with _open_image(image_module, path, root) as img:
            img = img.convert(mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), image_module.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - a truncated or corrupt file fails only when decoded
        raise DataError(f"{path.relative_to(root.parent)}: cannot decode the image ({type(err).__name__}: "
                        f"{err}); remove or replace it") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def read_image_folder(root: Path, size: Any = None, grey: Any = None) -> Dataset:
    """X (n, C, H, W) float32 in [0, 1] and y (n,) from one sub-folder of images per class.

    ``grey`` None picks grey when every image is a grey-level one, else RGB. Without
    ``size`` all images must have the same size; the first that differs is named.
    """
    from PIL import Image

    size = image_size(size)
    if grey is not None and not isinstance(grey, bool):
        raise DataError(f"image folder: 'grey' must be true or false, not {grey!r}")
    names, files = _class_files(root)
    headers = []
    for path in (p for group in files for p in group):
        with _open_image(Image, path, root) as img:
            headers.append((path, img.size, img.mode))
    if size is None:
        first_path, first_size, _ = headers[0]
        for path, wh, _ in headers:
            if wh != first_size:
                raise DataError(f"{path.relative_to(root.parent)} is {wh[0]}×{wh[1]} pixels but "
                                f"{first_path.relative_to(root.parent)} is {first_size[0]}×{first_size[1]}; "
                                "give \"size\": [height, width] to resize every image")
        size = (first_size[1], first_size[0])
    if grey is None:
        grey = all(mode in GREY_MODES for _, _, mode in headers)
    mode, channels = ("L", 1) if grey else ("RGB", 3)
    X = np.empty((len(headers), channels, *size), DTYPE)
    for i, (path, _, _) in enumerate(headers):
        np.multiply(_pixels(Image, path, root, mode, size), np.float32(1 / 255), out=X[i], casting="unsafe")
    y = np.repeat(np.arange(len(names), dtype=np.int64), [len(f) for f in files])
    return Dataset(X, y, "classification", root.name, [], names, "class")
