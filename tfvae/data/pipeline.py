"""The `tf.data` input pipeline: decoding, resizing, caching, shuffling, batching and sharding of images.

Streamed sources (image folders, TFRecords, `tfds` sets; see `tfvae.data.sources`) give records `(key, data)`: `key`
names the example in messages (a file, or `file#record`), `data` the encoded image. `BadImages.decode` turns them into
`(key, image)`, `image` float32 `[h, w, c]` in [0, 1] at its own size; `preprocess` and `stream` into batches:

    records -> decode (parallel) -> bad images: stop or skip -> channels -> resize and centre-crop -> cache
            -> shuffle (bounded, seeded by epoch) -> batch -> binarize -> prefetch

In-memory arrays take `pipeline` (images) or `array_batches` (what Keras' `fit` takes), which shuffle indices and
gather each batch in one op.

Each pass of a pipeline draws its shuffle order (a permutation of images in memory, or of a stream's files, and the
shuffle buffer's draws) and its binarization noise from its epoch's seed (see `epochs`): a run resumed at any epoch
draws what an uninterrupted run draws there.
"""

import math
import os
import re

import keras
import numpy as np
import tensorflow as tf

from tfvae.data.epochs import EpochCounter, epoch_seed
from tfvae.data.errors import DataError

SHUFFLE_BUFFER_BYTES = 128 * 2**20  # the shuffle buffer of a streamed set holds at most this many bytes of images
ERROR_MARKER = "tfvae data error: "
UNDECODABLE = "cannot be decoded"  # the message of a pipeline stopped by an image that did not decode
_ERROR_PATTERN = re.compile(re.escape(ERROR_MARKER) + r"(.*?)\]?$", re.MULTILINE)


def pipeline(images, batch_size, shuffle=True, binarize=False, flatten=True, seed=0, drop_remainder=False,
             epochs=None):
    """A `tf.data.Dataset` of image batches for `fit`, `evaluate` and `predict`, from images in memory.

    Args:
        images: float32 images in [0, 1], `[N, ...]`.
        batch_size: examples per batch.
        shuffle: reshuffle the examples every epoch.
        binarize: dynamic binarization: each pixel becomes 1 with probability equal to its value, drawn anew every
            epoch, as most MNIST VAE results use.
        flatten: one row per example (for MLPs) instead of images (for convolutional networks).
        seed: seeds the shuffling and the binarization.
        drop_remainder: leave out the last batch when it is smaller than `batch_size` (static batch shapes).
        epochs: the `EpochCounter` whose epoch each pass draws for (give it to `fit` too, to resume exactly); None
            for one that counts this dataset's passes.

    Returns:
        A prefetching `tf.data.Dataset` of float32 batches.
    """
    images = tf.constant(np.reshape(images, (len(images), -1)) if flatten else images)

    def one_epoch(seed_pair):
        batches = _gathered_batches(images, batch_size, seed_pair if shuffle else None, drop_remainder)
        return _binarized(batches, seed_pair) if binarize else batches

    batches = _each_epoch(one_epoch, seed, epochs, _batch_count(len(images), batch_size, drop_remainder))
    # Several workers each take their slice of every global batch (the data lives in memory, not in files).
    return _finish(batches, tf.data.experimental.AutoShardPolicy.DATA)


def array_batches(arrays, batch_size, shuffle=True, epochs=None):
    """Batches of in-memory arrays, as Keras batches the NumPy arrays given to `fit`, `evaluate` and `predict`.

    The batches hold `batch_size` examples, the last one fewer; with `shuffle` the examples are reshuffled every
    epoch, epoch `e` in the permutation drawn from `(s, e)`: `s` is TensorFlow's global seed (which
    `keras.utils.set_random_seed` sets; when none is set, a random one), so a `fit` resumed at epoch `e` (given
    `epochs` as a callback) draws what an uninterrupted one draws there, and several workers draw the same order and
    each take their part of it. The order is not the one Keras would draw. Floating-point arrays are cast to Keras'
    `floatx` (float32 unless set). Unlike Keras' own batches, these run without tf.data's autotuner (see `_finish`).

    Args:
        arrays: an array, or a tuple of arrays with as many examples each: `(x, y)` or `(x, y, sample_weight)`.
        batch_size: examples per batch.
        shuffle: reshuffle the examples every epoch.
        epochs: the `EpochCounter` whose epoch each pass draws its order for (give it to `fit` too); None for one
            that counts this dataset's passes.

    Returns:
        A prefetching `tf.data.Dataset` of batches with the structure of `arrays`.

    Raises:
        ValueError: when the arrays hold different numbers of examples.
    """
    counts = [len(array) for array in tf.nest.flatten(arrays)]
    if len(set(counts)) > 1:
        raise ValueError(f"Data cardinality is ambiguous: the arrays hold {counts} examples; give each as many.")
    tensors = tf.nest.map_structure(_floatx_tensor, arrays)
    batches = _each_epoch(lambda seed_pair: _gathered_batches(tensors, batch_size, seed_pair if shuffle else None),
                          _global_seed(), epochs, _batch_count(counts[0], batch_size, drop_remainder=False))
    return _finish(batches, shard_policy=tf.data.experimental.AutoShardPolicy.DATA)


def _global_seed():
    """TensorFlow's global seed (`tf.random.set_seed`, `keras.utils.set_random_seed`), else a random int: only the
    seed itself, not the count of random ops made since it was set, so any process that sets it gets it."""
    seed, _ = tf.compat.v1.get_seed(None)
    return int(np.random.default_rng().integers(2**31 - 1)) if seed is None else int(seed)


def _each_epoch(one_epoch, seed, epochs, batch_count):
    """The batches of `one_epoch(epoch_seed(seed, epoch))` for each pass, its epoch taken from `epochs` (a fresh
    `EpochCounter` when None); `batch_count` batches per pass when not None."""
    epochs = epochs or EpochCounter()
    batches = epochs.passes().flat_map(lambda epoch: one_epoch(epoch_seed(seed, epoch)))
    # Keras' progress bar and its end of an epoch need the number of batches: flat_map forgets it.
    return batches if batch_count is None else batches.apply(tf.data.experimental.assert_cardinality(batch_count))


def _batch_count(count, batch_size, drop_remainder):
    return count // batch_size if drop_remainder else math.ceil(count / batch_size)


def _gathered_batches(tensors, batch_size, order_seed, drop_remainder=False):
    """Batches of `tensors` (a structure of tensors with as many examples each), in order or, with an int64[2]
    `order_seed`, in the permutation it draws; each batch gathered by its indices."""
    # Each epoch draws one permutation of the indices in one op: a shuffle buffer of every index, filled one index at
    # a time before the epoch's first batch, delayed that batch by a large fraction of a second at a million examples.
    # Batches of indices are then gathered in one op per batch, which costs less tf.data CPU time than shuffling and
    # batching the images themselves: time that a 2-core machine would take from the training step
    # (`docs/benchmarks.md`).
    count = len(tf.nest.flatten(tensors)[0])
    if order_seed is None:
        indices = tf.data.Dataset.range(count)
    else:
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=_derived(order_seed, 1))
        indices = tf.data.Dataset.from_tensor_slices(order)
    batches = indices.batch(batch_size, drop_remainder=drop_remainder)
    return batches.map(lambda batch: tf.nest.map_structure(lambda tensor: tf.gather(tensor, batch), tensors),
                       num_parallel_calls=tf.data.AUTOTUNE)


def _floatx_tensor(array):
    """`array` as a tensor, floating-point numbers cast to Keras' `floatx` (NumPy arrays in NumPy, so that no tensor
    of the original type is made)."""
    floatx = keras.backend.floatx()
    if isinstance(array, np.ndarray) and tf.as_dtype(array.dtype).is_floating:
        array = array.astype(floatx, copy=False)
    tensor = tf.convert_to_tensor(array)
    return tf.cast(tensor, floatx) if tensor.dtype.is_floating else tensor


def stream(examples, image_shape, batch_size, shuffle=True, binarize=False, flatten=True, seed=0,
           drop_remainder=False, cache=None, shard_policy=tf.data.experimental.AutoShardPolicy.AUTO, buffer_size=None,
           epochs=None):
    """Batches of preprocessed examples (`preprocess`'s output) for `fit`, with caching and a bounded shuffle.

    Everything random in epoch `e` is drawn from `epoch_seed(seed, e)`: the order of `examples` when it is a
    function, the shuffle buffer's draws and the binarization noise. So a run resumed at epoch `e`, in any process,
    reads what the uninterrupted run read there.

    Args:
        examples: the float32 images `image_shape`: a `tf.data.Dataset` in one order for every epoch, or a function
            from an epoch's int64[2] seed to a dataset of them in an order drawn from that seed (not with `cache`).
        image_shape: `(height, width, channels)` of every image.
        batch_size, binarize, flatten, seed, drop_remainder, epochs: as for `pipeline`.
        shuffle: shuffle through a buffer, anew every epoch.
        cache: None (decode every epoch), `"memory"`, or a file path prefix to cache the decoded images at.
        shard_policy: how `tf.distribute` splits the data between workers (`OFF` when the examples are already
            those of one input pipeline).
        buffer_size: images in the shuffle buffer; None for as many as `SHUFFLE_BUFFER_BYTES` hold.

    Returns:
        A prefetching `tf.data.Dataset` of float32 batches.
    """
    if cache is not None:
        examples = examples.cache("" if cache == "memory" else cache)
    buffer_size = buffer_size or max(1, SHUFFLE_BUFFER_BYTES // (4 * math.prod(image_shape)))

    def one_epoch(seed_pair):
        epoch_examples = examples(_derived(seed_pair, 3)) if callable(examples) else examples
        if shuffle:
            epoch_examples = _shuffled(epoch_examples, buffer_size, _derived(seed_pair, 4))
        if flatten:
            epoch_examples = epoch_examples.map(lambda image: tf.reshape(image, [-1]))
        batches = epoch_examples.batch(batch_size, drop_remainder=drop_remainder)
        return _binarized(batches, seed_pair) if binarize else batches

    count = -1 if callable(examples) else int(examples.cardinality())
    batch_count = _batch_count(count, batch_size, drop_remainder) if count >= 0 else None
    return _finish(_each_epoch(one_epoch, seed, epochs, batch_count), shard_policy)


def _shuffled(dataset, buffer_size, seed_pair):
    """`dataset` shuffled through a buffer of `buffer_size` elements, its draws seeded by the int64[2] `seed_pair`.

    `Dataset.shuffle` takes a seed tensor only where TensorFlow's global seed is not 0 (its seed check reads the
    tensor as a Python bool inside a `tf.data` function), so the shuffle op is made here with the seeds given.
    """
    specs = tf.nest.flatten(dataset.element_spec)
    variant = tf.raw_ops.ShuffleDatasetV3(
        input_dataset=tf.data.experimental.to_variant(dataset), buffer_size=tf.constant(buffer_size, tf.int64),
        seed=seed_pair[0], seed2=seed_pair[1], seed_generator=tf.raw_ops.DummySeedGenerator(),
        reshuffle_each_iteration=False, output_types=[spec.dtype for spec in specs],
        output_shapes=[spec.shape for spec in specs])
    return tf.data.experimental.from_variant(variant, dataset.element_spec)


def decode(data):
    """Decodes PNG, JPEG, BMP or GIF (first frame) bytes into float32 `[h, w, c]` in [0, 1]: 8-bit pixels / 255
    (16-bit PNGs are read at 8 bits)."""
    return tf.cast(tf.io.decode_image(data, channels=0, expand_animations=False), tf.float32) / 255.0


class BadImages:
    """What happens to images that cannot be decoded: the run stops, or they are skipped and counted.

    No op can catch a failed decode, so the records are numbered, decoded in a parallel map and the failed ones
    dropped by `ignore_errors`: a gap in the numbers is a bad image. A last record that always decodes marks the end,
    so that a gap there shows too. Which files were bad is found afterwards, when there were any, by decoding the
    records once more in order (`undecodable_keys`).

    Args:
        skip: skip bad images (counting them in `skipped_count`) instead of stopping.
    """

    def __init__(self, skip=False):
        self.skip = skip
        self.skipped_count = 0  # bad images skipped so far, counted again in every epoch

    def decode(self, records):
        """`(key, encoded image)` records -> `(key, float32 image)` of the images that decode (see `decode`)."""
        end = tf.data.Dataset.from_tensors((tf.constant(""), tf.constant(""), tf.constant(True)))
        numbered = records.map(lambda key, data: (key, data, False)).concatenate(end).enumerate()
        decoded = numbered.map(_decode_numbered, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        checked = decoded.ignore_errors().scan(tf.constant(0, tf.int64), _count_missing).map(self._stop_or_count)
        return checked.filter(_is_not_last).map(_without_last)

    def _stop_or_count(self, key, image, last, missing):
        if not self.skip:
            return key, _checked(tf.equal(missing, 0), image, "", UNDECODABLE), last
        counted = tf.cond(missing > 0, lambda: tf.py_function(self._count, [missing], tf.bool), lambda: True)
        with tf.control_dependencies([counted]):
            return key, tf.identity(image), last

    def _count(self, missing):
        self.skipped_count += int(missing)
        return True


def undecodable_keys(records):
    """The keys of the `(key, encoded image)` records that cannot be decoded, in order: each record is decoded."""
    keys = [key.decode() for batch in records.map(lambda key, data: key).batch(4096).as_numpy_iterator()
            for key in batch]
    numbered = records.enumerate().map(lambda index, record: (index, tf.shape(decode(record[1]))),
                                       num_parallel_calls=tf.data.AUTOTUNE)
    decoded = numbered.ignore_errors().map(lambda index, shape: index).batch(4096).as_numpy_iterator()
    good = np.zeros(len(keys), bool)
    for indices in decoded:
        good[indices] = True
    return [key for key, ok in zip(keys, good, strict=True) if not ok]


def undecodable_message(keys):
    """What to tell the user about the images `keys` that cannot be decoded."""
    more = f" ({len(keys) - 1} more: {', '.join(keys[1:6])}{', ...' if len(keys) > 6 else ''})" if keys[1:] else ""
    return (f"{keys[0]} cannot be decoded as a PNG, JPEG, BMP or GIF image: it is corrupt, truncated or not an "
            f"image{more}. Remove such files, or skip them with --skip-bad-images (skip_bad_images=True).")


def preprocess(examples, channels, image_size=None, expected_size=None):
    """`(key, image)` -> images with `channels` channels, resized to `image_size` or checked to be `expected_size`.

    Args:
        examples: a dataset of `(key, float32 image [h, w, c])`.
        image_size: `(height, width)`: resize the short side to fit, then crop the centre (see `resize_and_crop`);
            None to keep every image's size, which must then be `expected_size`.
        channels: 1 (grayscale) or 3 (RGB); images of the other kind are converted.
        expected_size: `(height, width)` all images must have when `image_size` is None.
    """

    def prepare(key, image):
        image = to_channels(image, channels)
        if image_size is not None:
            return resize_and_crop(image, image_size)
        shape = tf.shape(image)
        same = tf.reduce_all(tf.equal(shape[:2], expected_size))
        message = tf.strings.format(" is {}x{} but the first image is {}x{}: give --image-size (image_size=) to "
                                    "resize them all to one size.", (shape[0], shape[1], *expected_size))
        image = _checked(same, image, key, message)
        return tf.ensure_shape(image, [*expected_size, channels])

    return examples.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)


def to_channels(image, channels):
    """Converts `[h, w, c]` (1: gray, 2: gray + alpha, 3: RGB, 4: RGBA) to `channels` (1 or 3), dropping alpha.

    Gray to RGB repeats the channel; RGB to gray is `tf.image.rgb_to_grayscale` (ITU-R 601 weights).
    """
    if channels == 1:
        from_gray, from_color = lambda: image[..., :1], lambda: tf.image.rgb_to_grayscale(image[..., :3])
    else:
        from_gray, from_color = lambda: tf.tile(image[..., :1], [1, 1, 3]), lambda: image[..., :3]
    known = image.shape[-1]
    if known is None:
        converted = tf.cond(tf.shape(image)[-1] < 3, from_gray, from_color)
    else:  # one branch: `tf.cond` builds both, and the RGB one cannot be built on one channel
        converted = from_gray() if known < 3 else from_color()
    return tf.ensure_shape(converted, [None, None, channels])


def resize_and_crop(image, size):
    """Resizes `image` so that it covers `size = (height, width)` with its aspect ratio kept, then crops the centre.

    The scale is `s = max(height / h, width / w)`: the short side (relative to the target's shape) fits exactly and
    the long one is cut evenly on both sides. Resizing is bilinear with antialiasing, so shrinking averages pixels.
    """
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    target = tf.constant(size, tf.float32)
    scale = tf.reduce_max(target / shape)
    covering = tf.maximum(tf.cast(tf.math.ceil(shape * scale - 1e-3), tf.int32), size)
    resized = tf.image.resize(image, covering, antialias=True)
    return tf.image.resize_with_crop_or_pad(resized, *size)


def parse_image_size(value):
    """`64` or `"64"` -> `(64, 64)`; `"64x48"` -> `(64, 48)` (height x width); None -> None."""
    if value is None or isinstance(value, tuple | list):
        return None if value is None else tuple(int(side) for side in value)
    sides = str(value).lower().split("x")
    if len(sides) not in (1, 2) or not all(side.strip().isdigit() and int(side) > 0 for side in sides):
        raise ValueError(f"image_size must be a positive number or HEIGHTxWIDTH such as 64x48, got {value!r}.")
    return (int(sides[0]), int(sides[-1]))


def resize_advice(image_size, factor):
    """What to tell a user whose images' sides must be multiples of `factor`, given the `image_size` they asked
    for (None when they asked for none): to pass `--image-size`, or a size that is a multiple of `factor`.

    Example: `resize_advice((36, 36), 8)` asks for a multiple of 8 such as 32 or 40.
    """
    if image_size is None:
        return f"Resize them with --image-size (image_size=), a multiple of {factor} such as {4 * factor}."
    height, width = parse_image_size(image_size)
    side = height if height % factor else width
    nearest = sorted({max(factor, side // factor * factor), (side // factor + 1) * factor})
    return (f"The --image-size {height}x{width} you gave is not a multiple of {factor}: choose one that is, such as "
            f"{' or '.join(map(str, nearest))}.")


def check_channels(value):
    """Raises `ValueError` unless `value` is None, 1 (grayscale) or 3 (RGB)."""
    if value not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3, got {value!r}.")


def raise_data_errors(error, find_undecodable=lambda: []):
    """Raises the `DataError` that a pipeline check put into `error` (an op error from iterating), if any.

    Args:
        error: the op error.
        find_undecodable: gives the keys of the images that cannot be decoded, to name them when one stopped the
            pipeline.
    """
    match = _ERROR_PATTERN.search(str(error))
    if match is None:
        return
    message = match.group(1).strip()
    if message == UNDECODABLE:
        keys = find_undecodable()
        message = undecodable_message(keys) if keys else f"An image {UNDECODABLE}."
    raise DataError(message) from None


def _checked(ok, image, key, message):
    """`image`, after an assertion that `ok`, which otherwise stops the pipeline with `key` and `message`."""
    check = tf.debugging.Assert(ok, [tf.strings.join([ERROR_MARKER, key, message])], summarize=1)
    with tf.control_dependencies([check]):
        return tf.identity(image)


def _decode_numbered(index, record):
    key, data, last = record
    image = tf.cond(last, lambda: tf.zeros([1, 1, 1]), lambda: decode(data))
    return index, key, image, last


def _is_not_last(key, image, last):
    return tf.logical_not(last)


def _without_last(key, image, last):
    return key, image


def _count_missing(expected, element):
    """A `scan` step: the state is the next record's number; the records before the given one are missing."""
    index, key, image, last = element
    return index + 1, (key, image, last, index - expected)


def _finish(batches, shard_policy):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = shard_policy
    # tf.data's autotuner re-plans from a thread that sleeps longer between plans as the iterator ages, and deleting
    # an iterator sometimes waits for that sleep to end. `fit` deletes one at every epoch's start, so some epochs
    # started up to a second late. Without it, AUTOTUNE means a fixed parallelism, TensorFlow's thread pool size but
    # at most `initial_parallelism` (16 unless set): set to every core here. The prefetch buffer grows while the
    # consumer waits, within tf.data's RAM budget; folders of JPEGs streamed as fast (`docs/benchmarks.md`).
    options.autotune.enabled = False
    options.autotune.initial_parallelism = os.cpu_count()
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)


def _binarized(batches, seed_pair):
    """`batches` with each pixel 1 with probability its value, else 0: batch `b` draws from
    `fold_in(fold_in(seed_pair, 2), b)`."""
    noise_seed = _derived(seed_pair, 2)

    def binarize(index, batch):
        uniform = tf.random.stateless_uniform(tf.shape(batch), seed=_derived(noise_seed, index))
        return tf.cast(uniform < batch, batch.dtype)

    return batches.enumerate().map(binarize, num_parallel_calls=tf.data.AUTOTUNE)


def _derived(seed_pair, index):
    """An int64[2] seed of its own for draw `index` of `seed_pair`."""
    return tf.random.experimental.stateless_fold_in(seed_pair, tf.cast(index, tf.int64))
