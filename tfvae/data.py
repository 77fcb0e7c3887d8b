"""Data for tfvae: `tensorflow_datasets` sets, local arrays and IDX files, and the `tf.data` input pipeline.

Every source loads into memory as float32 images `[N, height, width, channels]` scaled to [0, 1]; `pipeline` turns
them into batches for `fit`. Data sets of the MNIST family are small enough that memory is their cache.
"""

import gzip
import os
import struct
import zipfile

import numpy as np
import tensorflow as tf

TFDS_SCALES = {"mnist": 255.0, "fashion_mnist": 255.0, "binarized_mnist": 1.0, "frey_face": 255.0}
PREPARED_OFFLINE = {"frey_face"}  # tfds builders whose data ships with tfvae: preparing them downloads nothing
IDX_PREFIXES = {"train": "train", "test": "t10k"}
_TFDS_READ_BATCH = 10_000
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_LOCAL_HELP = (
    "Point tfvae at local files instead: a folder with MNIST-style IDX files (train-images-idx3-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz]), or a .npz/.npy file of images (tfvae train --dataset PATH)."
)


class DataError(ValueError):
    """A data source that cannot be read: missing, not downloaded, corrupt or truncated."""


def load_images(source, split="train", data_dir=None, download=False):
    """Loads one split of a data set as float32 images in [0, 1].

    Args:
        source: a `tfds` name (`"frey_face"`, `"mnist"`, `"fashion_mnist"`, `"binarized_mnist"`), a folder of
            MNIST-style IDX files, an IDX file, or a `.npz`/`.npy` file.
        split: `"train"` or `"test"` (`tfds` sets also take their own split names, such as `"validation"`).
        data_dir: where `tfds` keeps prepared data sets; None for its default.
        download: whether `tfds` may download a data set that is not prepared yet. Without it a missing data set
            fails at once with an error that says how to use local files.

    Returns:
        A float32 array `[N, height, width, channels]` (or `[N, D]` for an array file of flat rows).
    """
    if source in TFDS_SCALES:
        return _load_tfds(source, split, data_dir, download)
    if os.path.isdir(source):
        return _scale(read_idx(_idx_path(source, split)))
    if not os.path.exists(source):
        raise DataError(f"No data set or file named {source!r}; known data sets: {sorted(TFDS_SCALES)}. {_LOCAL_HELP}")
    if source.endswith((".npz", ".npy")):
        return _scale(_read_array_file(source, split))
    return _scale(read_idx(source))


def pipeline(images, batch_size, shuffle=True, binarize=False, flatten=True, seed=0, drop_remainder=False):
    """A `tf.data.Dataset` of image batches for `fit`, `evaluate` and `predict`.

    Args:
        images: float32 images in [0, 1], `[N, ...]`.
        batch_size: examples per batch (the last batch may be smaller, unless `drop_remainder`).
        shuffle: reshuffle the examples every epoch.
        binarize: dynamic binarization: each pixel becomes 1 with probability equal to its value, drawn anew every
            epoch, as most MNIST VAE results use.
        flatten: one row per example (for MLPs) instead of images (for convolutional networks).
        seed: seeds the shuffling and the binarization.
        drop_remainder: leave out the last batch of an epoch when it is smaller than `batch_size`, so that every
            batch has the same static shape (XLA then compiles the train step once). With `shuffle` the examples left
            out change from epoch to epoch.

    Returns:
        A prefetching `tf.data.Dataset` of float32 batches.
    """
    images = tf.constant(np.reshape(images, (len(images), -1)) if flatten else images)
    # Batches of shuffled indices, gathered in one op per batch. Shuffling and batching the images themselves took
    # 1.8 ms of tf.data CPU time per batch of 100 MNIST images in a profile, against 1.0 ms for this: on a
    # 2-core machine that time is taken from the training step.
    dataset = tf.data.Dataset.range(len(images))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(lambda indices: tf.gather(images, indices), num_parallel_calls=tf.data.AUTOTUNE)
    if binarize:
        batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, batch_seeds).map(_binarize, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    # Several workers each take their slice of every global batch (the data lives in memory, not in files).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


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


def _binarize(batch, seed):
    return tf.cast(tf.random.stateless_uniform(tf.shape(batch), seed=seed) < batch, batch.dtype)


def _load_tfds(name, split, data_dir, download):
    import tensorflow_datasets as tfds

    from tfvae import frey_face  # noqa: F401  (registers the frey_face builder)

    download = download or name in PREPARED_OFFLINE
    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir, download=download)
    except AssertionError as error:
        if "could not find data" not in str(error):
            raise
        raise DataError(
            f"The tfds data set {name!r} is not prepared in {data_dir or 'the default tfds folder'} and downloads "
            f"are off. Allow them with download=True (tfvae train --download) if this machine has network. "
            f"{_LOCAL_HELP}"
        ) from error
    except OSError as error:
        raise DataError(f"Downloading the tfds data set {name!r} failed: {error}. {_LOCAL_HELP}") from error
    batches = dataset.map(lambda example: example["image"]).batch(_TFDS_READ_BATCH)
    return np.concatenate(list(batches.as_numpy_iterator())).astype(np.float32) / TFDS_SCALES[name]


def _idx_path(folder, split):
    if split not in IDX_PREFIXES:
        raise DataError(f"An IDX folder has the splits {sorted(IDX_PREFIXES)}, not {split!r}.")
    for suffix in (".gz", ""):
        path = os.path.join(folder, f"{IDX_PREFIXES[split]}-images-idx3-ubyte{suffix}")
        if os.path.exists(path):
            return path
    raise DataError(f"{folder} has no {IDX_PREFIXES[split]}-images-idx3-ubyte[.gz] file for the {split!r} split.")


def _read_array_file(path, split):
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


def _scale(array):
    """Images as float32 `[N, h, w, c]` in [0, 1]: integers are divided by 255, a channel axis is added to 3-D data."""
    if array.ndim < 2:
        raise DataError(f"Expected a batch of images or rows, got an array of shape {array.shape}.")
    images = array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        images /= 255.0
    return images[..., np.newaxis] if images.ndim == 3 else images
