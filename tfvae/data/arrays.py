"""Images held in memory: IDX files (MNIST's format), `.npz`/`.npy` arrays, and their scaling to [0, 1].

These sources are small (the MNIST family, Frey Face, a user's array file), so memory is their cache.
"""

import gzip
import os
import struct
import zipfile

import numpy as np

from tfvae.data.errors import DataError

IDX_PREFIXES = {"train": "train", "test": "t10k"}
ARRAY_SUFFIXES = (".npz", ".npy")
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_INTEGER_SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def is_idx_folder(path):
    """Whether `path` is a folder holding MNIST-style IDX image files."""
    return os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, f"{prefix}-images-idx3-ubyte{suffix}"))
        for prefix in IDX_PREFIXES.values() for suffix in (".gz", "")
    )


def load_array_images(path, split):
    """One split of an IDX folder, an IDX file or a `.npz`/`.npy` file as float32 images in [0, 1].

    Returns:
        A float32 array `[N, height, width, channels]` (or `[N, D]` for an array of flat rows).
    """
    if os.path.isdir(path):
        path = idx_path(path, split)
        array = read_idx(path)
    elif path.endswith(ARRAY_SUFFIXES):
        array = read_array_file(path, split)
    else:
        array = read_idx(path)
    return scale_to_unit_interval(array, path)


def scale_to_unit_interval(array, name):
    """Images as float32 `[N, h, w, c]` in [0, 1], a channel axis added to 3-D data.

    uint8 pixels are divided by 255 and uint16 pixels by 65535, except that integer arrays whose values are all 0
    and 1 (binary images) are kept as they are; floats are kept.

    Raises:
        DataError: naming `name`, for fewer than 2 dimensions, other integer types with values beyond 0 and 1, or
            values outside [0, 1] after scaling.
    """
    if array.ndim < 2:
        raise DataError(f"{name}: expected a batch of images or rows, got an array of shape {array.shape}.")
    images = array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer) and array.size and not np.isin(array, (0, 1)).all():
        if array.dtype not in _INTEGER_SCALES:
            raise DataError(f"{name}: integer pixels of dtype {array.dtype} other than 0 and 1; store uint8 (0-255), "
                            "uint16 (0-65535), or floats in [0, 1].")
        images /= _INTEGER_SCALES[array.dtype]
    if images.size and not (images.min() >= 0.0 and images.max() <= 1.0):
        raise DataError(f"{name}: pixel values span [{images.min():g}, {images.max():g}]; tfvae takes floats in "
                        "[0, 1], uint8 (0-255), uint16 (0-65535) or integer 0/1 images. Rescale the file.")
    return images[..., np.newaxis] if images.ndim == 3 else images


def read_idx(path):
    """Reads an IDX file (MNIST's format), gzipped or not, into a NumPy array of its own dtype and shape.

    Raises:
        DataError: for a file that is not IDX, or whose data is shorter or longer than its header says.
    """
    try:
        with open(path, "rb") as file:
            content = file.read()
        if content[:2] == b"\x1f\x8b":
            content = gzip.decompress(content)
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read it as (gzipped) IDX: {error}") from error
    if len(content) < 4 or content[:2] != b"\0\0" or content[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (its first bytes are {content[:4]!r}).")
    dtype, ndim = np.dtype(_IDX_DTYPES[content[2]]), content[3]
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(f"{path}: truncated IDX header.")
    shape = struct.unpack(f">{ndim}I", content[4:header_size])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(content) - header_size != expected:
        raise DataError(
            f"{path}: the header announces {shape} values of {dtype.name} ({expected} bytes) but the file holds "
            f"{len(content) - header_size} bytes: it is truncated or corrupt."
        )
    return np.frombuffer(content, dtype, offset=header_size).reshape(shape).astype(dtype.newbyteorder("="))


def idx_path(folder, split):
    """The IDX image file of `split` (`"train"` or `"test"`) in `folder`, gzipped or not."""
    if split not in IDX_PREFIXES:
        raise DataError(f"An IDX folder has the splits {sorted(IDX_PREFIXES)}, not {split!r}.")
    for suffix in (".gz", ""):
        path = os.path.join(folder, f"{IDX_PREFIXES[split]}-images-idx3-ubyte{suffix}")
        if os.path.exists(path):
            return path
    raise DataError(f"{folder} has no {IDX_PREFIXES[split]}-images-idx3-ubyte[.gz] file for the {split!r} split.")


def read_array_file(path, split):
    """The images array of a `.npy` file, or of a `.npz` file: the array named `split`, `images` or `x`, or its only
    array."""
    try:
        if path.endswith(".npy"):
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: cannot read it as a NumPy array file: {error}") from error
    for key in (split, "images", "x"):
        if key in arrays:
            return arrays[key]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise DataError(f"{path} holds {sorted(arrays)}; name the array {split!r}, 'images' or 'x'.")
