"""One entry point to images from any source: `open_images` and `open_training_images`.

They give an image set: `image_shape`, `count`, `batches(...)` (a `tf.data.Dataset` for `fit`), `take(n)` (a few
images as a NumPy array, for pictures and diagnostics) and `skipped` (bad images skipped so far). Small sources
(IDX and NumPy files, the MNIST family, Frey Face) are held in memory as today; image folders, TFRecords and other
`tfds` sets are streamed.
"""

import atexit
import contextlib
import functools
import glob
import hashlib
import os

import numpy as np
import tensorflow as tf

from tfvae.data import arrays, download_hosts, pipeline, sources
from tfvae.data.epochs import epoch_seed
from tfvae.data.errors import DataError
from tfvae.files.run_lock import RunLock, RunLockedError

IN_MEMORY_TFDS = ("frey_face", "mnist", "fashion_mnist", "binarized_mnist")  # small tfds sets held in memory
PREPARED_OFFLINE = {"frey_face"}  # tfds builders whose data ships with tfvae: preparing them downloads nothing
CACHE_CHOICES = ("auto", "memory", "none")  # or a folder
# `cache="auto"` keeps a streamed set in memory when its decoded float32 images take at most this many bytes.
CACHE_IN_MEMORY_BYTES = 2**30
_TFDS_READ_BATCH = 10_000
ONE_ORDER = -1  # the epoch number whose seed orders the files of a set read in one order every epoch (cached, tfds)
_HELD_CACHE_FOLDERS = set()  # cache folders this process holds
_LOCAL_HELP = (
    "Point tfvae at local files instead: a folder of images, TFRecord files, a folder with MNIST-style IDX files "
    "(train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz]), or a .npz/.npy file of images "
    "(tfvae train --dataset PATH)."
)


def open_images(source, split="train", *, image_size=None, channels=None, image_key=None, cache="auto",
                skip_bad_images=False, data_dir=None, download=False):
    """One split of images from `source`, as float32 in [0, 1].

    Args:
        source: a `tfds` name with an image feature (`cifar10`, `mnist`, `frey_face`, ...); a folder of images (PNG,
            JPEG, BMP, GIF; searched recursively); TFRecord files (a glob, a folder of `*.tfrecord*` shards, a file,
            or a list) of `tf.train.Example`s holding encoded images; a folder of MNIST-style IDX files, an IDX file,
            or a `.npz`/`.npy` file.
        split: the `tfds` split, or `"train"`/`"test"` of an IDX folder or `.npz` file. A folder of images and TFRecord
            files are one split: use `open_training_images` to hold out a validation part.
        image_size: `(height, width)`, `"HxW"` or an int for squares: resize the short side and crop the centre
            (`pipeline.resize_and_crop`). None keeps the images' size, which must then be the same for all.
        channels: 1 (grayscale) or 3 (RGB), converting images of the other kind; None: those of the first image.
        image_key: the feature that holds the image in a TFRecord example or a `tfds` set.
        cache: `"auto"` (in memory when the decoded images take at most `CACHE_IN_MEMORY_BYTES`, else none),
            `"memory"`, `"none"`, or a folder to cache decoded images in (for sets larger than memory).
        skip_bad_images: skip images that cannot be decoded (counted in `skipped`) instead of stopping.
        data_dir: where `tfds` keeps prepared data sets; None for its default.
        download: whether `tfds` may download a data set that is not prepared yet.

    Returns:
        An image set (`InMemoryImages` or `StreamedImages`).
    """
    return _open(source, split, None, _Options(image_size, channels, image_key, cache, skip_bad_images, data_dir,
                                               download))


def open_training_images(source, validation_split=0.0, seed=0, **options):
    """The training images and the validation images (None when `validation_split` is 0) of `source`.

    The validation images are: for a folder of images or TFRecords, the `validation_split` fraction chosen by a hash
    of each file's path relative to the folder (of each record's file name and index), which never moves between
    runs; for a `tfds` set with a `validation` split, that split, else the last `validation_split` of `train`; for
    sources held in memory, a fraction of the training split chosen by a permutation seeded with `seed`.

    Args:
        options: as for `open_images`.

    Returns:
        `(train, validation)` image sets.
    """
    options = _Options(**options)
    if not validation_split:
        return _open(source, "train", None, options), None
    return _open(source, "train", (validation_split, seed), options)


def load_images(source, split="train", data_dir=None, download=False):
    """Loads one split of a data set (any source `open_images` takes) as float32 images in [0, 1], into memory.

    Returns:
        A float32 array `[N, height, width, channels]` (or `[N, D]` for an array file of flat rows).
    """
    return open_images(source, split, data_dir=data_dir, download=download).take()


class InMemoryImages:
    """Images held in memory, `[N, h, w, c]` (or `[N, D]`), batched by `pipeline.pipeline`."""

    skipped = frozenset()

    def __init__(self, images):
        self.images = images
        self.image_shape = images.shape[1:]
        self.count = len(images)

    def batches(self, batch_size, shuffle=True, binarize=False, flatten=True, seed=0, drop_remainder=False,
                epochs=None):
        """A `tf.data.Dataset` of batches; see `pipeline.pipeline`."""
        return pipeline.pipeline(self.images, batch_size, shuffle, binarize, flatten, seed, drop_remainder, epochs)

    def take(self, count=None):
        """The first `count` images (all when None) as a float32 array."""
        return self.images[:count]


class StreamedImages:
    """Images decoded from files while training, batched by `pipeline.stream`; nothing holds them all unless cached.

    Args:
        source: an `ImageFolder`, `TFRecordFiles` or `TfdsImages`.
        options: the `_Options` of `open_images`.
        cache_name: names this set's cache file in a cache folder.
    """

    def __init__(self, source, options, cache_name):
        self.source = source
        self.count = source.count
        self.bad_images = pipeline.BadImages(options.skip_bad_images)
        self.image_size = options.image_size
        self._undecodable = None  # before the first image: a bad one there is named from it
        first = self._first_image()
        self.channels = options.channels or (1 if first.shape[-1] < 3 else 3)
        self.image_shape = (*(self.image_size or first.shape[:2]), self.channels)
        self.cache = _resolve_cache(options.cache, self.count, self.image_shape, cache_name)

    @property
    def skipped(self):
        """The keys (files, or `file#record`) of the images that cannot be decoded, once one has been skipped."""
        return frozenset(self.undecodable()) if self.bad_images.skipped_count else frozenset()

    def undecodable(self):
        """The keys of the images that cannot be decoded, found (once) by decoding every image."""
        if self._undecodable is None:
            self._undecodable = pipeline.undecodable_keys(self.source.records()) if self.source.encoded else []
        return self._undecodable

    def examples(self, order_seed=None, input_context=None):
        """The preprocessed images, one by one: files in order, or in the permutation the int64[2] `order_seed`
        draws; with an `input_context`, those of its input pipeline."""
        decoded = self._decoded(self.source.records(order_seed, input_context))
        return pipeline.preprocess(decoded, self.channels, self.image_size, self.image_shape[:2])

    def batches(self, batch_size, shuffle=True, binarize=False, flatten=True, seed=0, drop_remainder=False,
                epochs=None, input_context=None):
        """A `tf.data.Dataset` of batches; see `pipeline.stream`.

        With `shuffle`, epoch `e`'s order is drawn from `(seed, e)` alone, so a run resumed at any epoch, in any
        process, reads what the uninterrupted run read there. A folder of images or TFRecords read anew every epoch
        reads its files in a permutation drawn for the epoch; a cached set is cached with its files in one
        permutation of the seed (a `tfds` set is read so), and every set is then shuffled through the buffer by a
        seed drawn for the epoch: through all of it when the cache is in memory.

        Args:
            input_context: a `tf.distribute.InputContext` (from `strategy.distribute_datasets_from_function`): read
                and decode only the files (or records) of its input pipeline, in batches of its share of
                `batch_size`. Without it, a multi-worker strategy gives each worker its part of the decoded images.
        """
        if shuffle and self.cache is None and self.source.orders_in_pipeline:
            examples = functools.partial(self.examples, input_context=input_context)  # of each epoch's order seed
        else:
            examples = self.examples(epoch_seed(seed, ONE_ORDER) if shuffle else None, input_context)
        buffer = self.count if self.cache == "memory" else None
        cache = self.cache
        policy = self.source.shard_policy
        if input_context is not None:
            batch_size = input_context.get_per_replica_batch_size(batch_size)
            policy = tf.data.experimental.AutoShardPolicy.OFF
        if cache not in (None, "memory"):
            cache = _held_cache_files(cache, input_context)
        return pipeline.stream(examples, self.image_shape, batch_size, shuffle, binarize, flatten, seed,
                               drop_remainder, cache, policy, buffer, epochs)

    def take(self, count=None):
        """The first `count` images (all when None) in order, as a float32 array."""
        examples = self.examples()
        if count is not None:
            examples = examples.take(count)
        with raising_data_errors(self):
            batches = [batch.numpy() for batch in examples.batch(1000)]
        return np.concatenate(batches) if batches else np.zeros((0, *self.image_shape), np.float32)

    def _decoded(self, records, bad_images=None):
        return (bad_images or self.bad_images).decode(records) if self.source.encoded else records

    def _first_image(self):
        # Bad images met here (also those decoded ahead) are not counted as skipped.
        with raising_data_errors(self):
            first = next(iter(self._decoded(self.source.records(), pipeline.BadImages(self.bad_images.skip)).take(1)),
                         None)
        if first is None:
            raise DataError(f"{self.source.name}: no image could be read (all were bad or the split is empty).")
        return first[1]


@contextlib.contextmanager
def raising_data_errors(*image_sets):
    """Within it, an op error that a pipeline check raised (a bad image, a size mismatch) becomes a `DataError`.

    Args:
        image_sets: the image sets being read (None for none), searched for the images that cannot be decoded when
            one stopped the pipeline.
    """
    try:
        yield
    except tf.errors.OpError as error:
        streamed = [images for images in image_sets if isinstance(images, StreamedImages)]
        pipeline.raise_data_errors(error, lambda: [key for images in streamed for key in images.undecodable()])
        raise


class _Options:
    def __init__(self, image_size=None, channels=None, image_key=None, cache="auto", skip_bad_images=False,
                 data_dir=None, download=False):
        self.image_size = pipeline.parse_image_size(image_size)
        pipeline.check_channels(channels)
        self.channels, self.image_key, self.cache = channels, image_key, cache
        self.skip_bad_images, self.data_dir, self.download = skip_bad_images, data_dir, download


def _open(source, split, holdout, options):
    """Opens `source`: one image set or, with `holdout` `(fraction, seed)`, its parts `(train, validation)`."""
    tfrecords = sources.find_tfrecords(source)
    if tfrecords:
        return _streamed(lambda by_hash: sources.TFRecordFiles(tfrecords, options.image_key, by_hash), source, holdout,
                         options)
    if os.path.isfile(source) and source.lower().endswith(sources.IMAGE_SUFFIXES):
        raise DataError(f"{source} is an image file; give the folder that holds the images.")
    if arrays.is_idx_folder(source) or os.path.isfile(source):
        return _in_memory(arrays.load_array_images(source, split), holdout, options)
    if os.path.isdir(source):
        return _streamed(lambda by_hash: sources.ImageFolder(source, by_hash), source, holdout, options)
    return _open_tfds(source, split, holdout, options)


def _streamed(make_source, source, holdout, options):
    """`StreamedImages` of the source `make_source(by_hash)` makes: the whole set or, with `holdout`, its two parts,
    each file (record) in one by the hash of its name (`by_hash` is `(fraction, part)`)."""
    if holdout is None:
        return StreamedImages(make_source(None), options, _cache_name(source, None))
    fraction, seed = holdout
    return tuple(StreamedImages(make_source((fraction, part)), options, _cache_name(source, (fraction, part, seed)))
                 for part in ("train", "validation"))


def _open_tfds(name, split, holdout, options):
    import tensorflow_datasets as tfds

    from tfvae.data import frey_face  # noqa: F401  (registers the frey_face builder)

    if _looks_like_a_path(name):
        raise DataError(f"{name}: no such file or folder.")
    try:
        builder = tfds.builder(name, data_dir=options.data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError) as error:  # ValueError: not a tfds name at all
        raise DataError(f"No data set or file named {name!r}: not a path, and not a tfds data set (such as "
                        f"{', '.join(IN_MEMORY_TFDS)} or cifar10). {_LOCAL_HELP}") from error

    if options.download and name not in PREPARED_OFFLINE and not builder.is_prepared():
        download_hosts.check_download_hosts(name, builder.url_infos or (), _LOCAL_HELP)

    def load(split, **kwargs):
        return _tfds_load(name, split, options, **kwargs)

    if name in IN_MEMORY_TFDS:
        batches = load(split).map(lambda example: example[options.image_key or "image"]).batch(_TFDS_READ_BATCH)
        images = np.concatenate(list(batches.as_numpy_iterator()))
        return _in_memory(arrays.scale_to_unit_interval(images, name), holdout, options)

    def streamed_split(split):
        return StreamedImages(sources.TfdsImages(name, split, builder.info, load, options.image_key), options,
                              _cache_name(name, (split,)))

    if holdout is None:
        return streamed_split(split)
    return tuple(map(streamed_split, _tfds_parts(split, holdout[0], builder.info.splits)))


def _looks_like_a_path(name):
    """Whether `name` can only be a path (`/x`, `./x`, `~/x`, `x.npz`), not a tfds name (`mnist`,
    `mnist_corrupted/shot_noise:1.0.0`)."""
    suffixes = (*arrays.ARRAY_SUFFIXES, *sources.TFRECORD_SUFFIXES)
    return name.startswith(("/", ".", "~", os.sep)) or os.path.splitext(name)[1] in suffixes


def _tfds_parts(split, fraction, splits):
    """The `tfds` splits of the train and validation parts of `split`: the set's own `validation` split when it has
    one, else the last `fraction` of `split`."""
    if "validation" in splits:
        return split, "validation"
    kept = 100 - max(1, round(100 * fraction))
    return f"{split}[:{kept}%]", f"{split}[{kept}%:]"


def _tfds_load(name, split, options, **kwargs):
    import tensorflow_datasets as tfds

    download = options.download or name in PREPARED_OFFLINE
    try:
        return tfds.load(name, split=split, data_dir=options.data_dir, download=download, **kwargs)
    except AssertionError as error:
        if "could not find data" not in str(error):
            raise
        raise DataError(
            f"The tfds data set {name!r} is not prepared in {options.data_dir or 'the default tfds folder'} and "
            f"downloads are off. Allow them with download=True (tfvae train --download) if this machine has network. "
            f"{_LOCAL_HELP}"
        ) from error
    except OSError as error:
        raise DataError(f"Downloading the tfds data set {name!r} failed: {error}. {_LOCAL_HELP}") from error


def _in_memory(images, holdout, options):
    """Images in memory, preprocessed as `options` ask: one set or, with `holdout` `(fraction, seed)`, its parts
    `(train, validation)`, the validation part chosen by a seeded permutation.

    Both parts come from one read of the source, faster than reading it once for each.
    """
    if options.image_size is not None or options.channels is not None:
        if images.ndim != 4:
            raise DataError(f"Rows of shape {images.shape[1:]} are not images: image_size and channels need "
                            "[N, height, width, channels] data.")
        slices = tf.data.Dataset.from_tensor_slices((tf.zeros([len(images)], tf.string), images))
        channels = options.channels or (1 if images.shape[-1] < 3 else 3)
        size = options.image_size or images.shape[1:3]
        images = np.concatenate([batch.numpy() for batch in pipeline.preprocess(slices, channels, size).batch(1000)])
    if holdout is None:
        return InMemoryImages(images)
    fraction, seed = holdout
    order = np.random.default_rng(seed).permutation(len(images))
    count = max(1, int(round(fraction * len(images))))
    return InMemoryImages(images[order[count:]]), InMemoryImages(images[order[:count]])


def _resolve_cache(cache, count, image_shape, name):
    """`"memory"`, a cache folder, or None, for `cache` (`open_images`) of `count` images of `image_shape`."""
    if cache == "auto":
        size = None if count is None else count * 4 * int(np.prod(image_shape))
        return "memory" if size is not None and size <= CACHE_IN_MEMORY_BYTES else None
    if cache in ("memory", "none"):
        return None if cache == "none" else "memory"
    return os.path.join(cache, f"{name}-{'x'.join(str(side) for side in image_shape)}")


def _held_cache_files(folder, input_context=None):
    """The prefix of the cache files in `folder` (in a folder of its own for the input pipeline of `input_context`),
    which this process holds (see `tfvae.files.run_lock`) until it ends, so that no other run writes the same cache.

    A run killed while it wrote a cache leaves `tf.data`'s own lock file (and a partial file) behind, which would stop
    every later run: once this process holds the folder, those are left over from a dead run and are removed.

    Raises:
        DataError: when a live process holds the folder.
    """
    if input_context is not None:
        folder = f"{folder}-part{input_context.input_pipeline_id}of{input_context.num_input_pipelines}"
    prefix = os.path.join(folder, "images")
    if folder in _HELD_CACHE_FOLDERS:
        return prefix
    lock = RunLock(folder, instead="give another --cache folder")
    try:
        lock.__enter__()
    except RunLockedError as error:
        raise DataError(f"The image cache {error}") from None
    atexit.register(lock.__exit__, None, None, None)
    _HELD_CACHE_FOLDERS.add(folder)
    for leftover in glob.glob(f"{glob.escape(prefix)}*.lockfile") + glob.glob(f"{glob.escape(prefix)}*.tempstate*"):
        os.remove(leftover)
    return prefix


def _cache_name(source, holdout):
    """A file name for the cache of `source` (and its hold-out part): readable, and unique to them."""
    base = os.path.basename(os.path.normpath(str(source[0] if isinstance(source, list | tuple) else source)))
    return f"{base}-{hashlib.sha1(repr((source, holdout)).encode()).hexdigest()[:10]}"
