"""Where streamed images come from: folders of image files, TFRecord files, and `tensorflow_datasets` sets.

Each source's `records(order_seed=None, input_context=None)` gives a `tf.data.Dataset` of `(key, data)`: `key` names
the example in messages (a file, `file#record`, a tfds id) and `data` is the encoded image (when the source's
`encoded` is True) or a float32 image `[h, w, c]` in [0, 1]. The records come with their files in a fixed order, or in
the permutation an int64[2] `order_seed` draws; with a `tf.distribute.InputContext`, only the part of that input
pipeline. A source whose `orders_in_pipeline` is True takes an `order_seed` computed inside a `tf.data` function (an
epoch's, see `tfvae.data.epochs`); the others need a concrete one. `shard_policy` says how `tf.distribute` may shard a
source read without an input context.

Nothing here builds a dataset per file or per record: such datasets, interleaved, kept about 10 KiB each after they
ended, so a pipeline's memory grew with the number of images it had read. Folders and TFRecords hold out a validation
part chosen by a hash of each file's path (or record's file and index), so an example never moves between runs.
"""

import os

import tensorflow as tf

from tfvae.data.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec")
DEFAULT_IMAGE_KEY = "image"
_HASH_BUCKETS = 1_000_000
_INTERLEAVE_CYCLE = 8


def held_out(keys, fraction):
    """Whether each key (string tensor) is in the held-out `fraction`: FarmHash's fingerprint of the key, modulo
    `_HASH_BUCKETS`, is below `fraction * _HASH_BUCKETS`. The same on every machine and in every run."""
    return tf.strings.to_hash_bucket_fast(keys, _HASH_BUCKETS) < round(fraction * _HASH_BUCKETS)


def in_order(names, order_seed=None):
    """A dataset of the strings `names`, in their order or in the permutation that the int64[2] `order_seed` draws
    (`tf.random.experimental.stateless_shuffle`: the same for the same seed in any process)."""
    names = tf.constant(names, tf.string)
    if order_seed is not None:
        names = tf.random.experimental.stateless_shuffle(names, seed=order_seed)
    return tf.data.Dataset.from_tensor_slices(names)


def shard(dataset, input_context):
    """The elements of `dataset` that belong to the input pipeline of `input_context` (all when it is None)."""
    if input_context is None:
        return dataset
    return dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)


class ImageFolder:
    """The image files (PNG, JPEG, BMP, GIF) below `root`, searched recursively in sorted order, hidden ones skipped.

    Args:
        root: the folder.
        holdout: `(fraction, part)`: keep only the files whose relative path `held_out` puts in (`part="validation"`)
            or out of (`part="train"`) the held-out fraction; None for every file.
    """

    encoded = True
    orders_in_pipeline = True
    # The files are read by a `map` (no reader dataset for FILE sharding to find): without an input context,
    # tf.distribute shards the decoded images.
    shard_policy = tf.data.experimental.AutoShardPolicy.DATA

    def __init__(self, root, holdout=None):
        self.name = root
        paths = list_images(root)
        if holdout is not None:
            fraction, part = holdout
            relative = [os.path.relpath(path, root) for path in paths]
            chosen = held_out(relative, fraction).numpy() == (part == "validation")
            paths = [path for path, keep in zip(paths, chosen, strict=True) if keep]
            if not paths:
                raise DataError(f"{root}: none of its {len(relative)} images falls in the {part} part of a "
                                f"validation split of {fraction}; give more images or another --validation-split.")
        self.paths = paths
        self.count = len(paths)

    def records(self, order_seed=None, input_context=None):
        paths = shard(in_order(self.paths, order_seed), input_context)
        return paths.map(lambda path: (path, tf.io.read_file(path)), num_parallel_calls=tf.data.AUTOTUNE,
                         deterministic=True)


def list_images(root):
    """The image files below `root` in sorted order; raises `DataError` when there are none."""
    paths, others = [], 0
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            if name.lower().endswith(IMAGE_SUFFIXES):
                paths.append(os.path.join(folder, name))
            else:
                others += 1
    if not paths:
        found = f"only {others} other files" if others else "nothing"
        raise DataError(f"{root} holds no images (PNG, JPEG, BMP or GIF files, searched recursively): it holds "
                        f"{found}. Point --dataset at a folder of images, TFRecords, a tfds name or an array file.")
    return paths


class TFRecordFiles:
    """`tf.train.Example` records holding encoded images (PNG, JPEG, BMP, GIF) under `image_key`.

    Args:
        files: the TFRecord files, in order.
        image_key: the feature holding the encoded image bytes (default `"image"`).
        holdout: `(fraction, part)` as for `ImageFolder`, by the hash of `"<file name>#<record index>"`.
    """

    encoded = True
    orders_in_pipeline = True
    # Bad images are dropped after the reader (`ignore_errors`, `scan`), where tf.distribute cannot shard by file.
    shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    count = None

    def __init__(self, files, image_key=None, holdout=None):
        self.files = list(files)
        self.name = self.files[0] if len(self.files) == 1 else f"{len(self.files)} TFRecord files"
        self.image_key = image_key or DEFAULT_IMAGE_KEY
        self.holdout = holdout
        self._check_key()

    def records(self, order_seed=None, input_context=None):
        files = in_order(self.files, order_seed)
        # Each input pipeline reads its own files when there are enough of them, else its own records of all files.
        by_file = input_context is not None and len(self.files) >= input_context.num_input_pipelines
        records = shard(files, input_context) if by_file else files
        records = records.interleave(self._keyed_records, cycle_length=_INTERLEAVE_CYCLE,
                                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if not by_file:
            records = shard(records, input_context)
        if self.holdout is not None:
            fraction, part = self.holdout
            records = records.filter(lambda key, _: held_out(key, fraction) == (part == "validation"))
        features = {self.image_key: tf.io.FixedLenFeature([], tf.string, default_value="")}
        return records.map(lambda key, record: (key, tf.io.parse_single_example(record, features)[self.image_key]),
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    @staticmethod
    def _keyed_records(path):
        name = tf.strings.split(path, "/")[-1]
        records = tf.data.TFRecordDataset(path)
        return records.enumerate().map(lambda index, record: (tf.strings.join([name, tf.strings.as_string(index)], "#"),
                                                              record))

    def _check_key(self):
        for path in self.files:
            first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
            if first is None:
                continue
            try:
                features = tf.train.Example.FromString(first.numpy()).features.feature
            except Exception as error:  # the protobuf decode error has no public class
                raise DataError(f"{path}: its first record is not a tf.train.Example: {error}") from error
            if self.image_key not in features:
                raise DataError(f"{path}: its records have no feature {self.image_key!r}; they have "
                                f"{sorted(features)}. Name the image feature with --image-key (image_key=).")
            return
        raise DataError(f"{self.name}: the TFRecord files hold no records.")


def find_tfrecords(source):
    """The TFRecord files `source` names (a list, a glob, a folder of `*.tfrecord*` shards, or one file), else None."""
    if isinstance(source, list | tuple):
        return sorted(source)
    if any(character in source for character in "*?["):
        return sorted(tf.io.gfile.glob(source)) or None
    if os.path.isdir(source):
        shards = [os.path.join(source, name) for name in sorted(os.listdir(source))
                  if not name.startswith(".") and any(suffix in name for suffix in TFRECORD_SUFFIXES)]
        return shards or None
    named = os.path.isfile(source) and any(suffix in os.path.basename(source) for suffix in TFRECORD_SUFFIXES)
    return [source] if named else None


class TfdsImages:
    """One split of a `tensorflow_datasets` set with an image feature (any size, 1 or 3 channels).

    Args:
        name: the `tfds` name (`cifar10`, `celeb_a`, `oxford_flowers102`, ...).
        split: a `tfds` split, slices included (`train[:90%]`).
        image_key: the image feature; default the set's only `Image` feature, else `"image"`.
        info: the set's `tfds.core.DatasetInfo`.
        load: a function `(split, **tfds_load_kwargs) -> tf.data.Dataset` that reports unprepared sets.
    """

    encoded = False  # tfds decodes the images
    orders_in_pipeline = False  # tfds shuffles its files by an int seed, given when the dataset is made
    shard_policy = tf.data.experimental.AutoShardPolicy.AUTO

    def __init__(self, name, split, info, load, image_key=None):
        self.name = name
        self.split = split
        self.load = load
        self.image_key = image_key or default_image_key(info)
        if self.image_key not in info.features:
            raise DataError(f"The tfds data set {name!r} has no feature {self.image_key!r}; it has "
                            f"{sorted(info.features)}. Name the image feature with --image-key (image_key=).")
        self.count = _split_size(info, split)

    def records(self, order_seed=None, input_context=None):
        import tensorflow_datasets as tfds

        shuffle_seed = None if order_seed is None else int(order_seed[0]) % 2**31
        read_config = tfds.ReadConfig(add_tfds_id=True, shuffle_seed=shuffle_seed, try_autocache=False,
                                      shuffle_reshuffle_each_iteration=False, input_context=input_context)
        dataset = self.load(self.split, shuffle_files=shuffle_seed is not None, read_config=read_config)
        return dataset.map(lambda example: (example["tfds_id"],
                                            tf.image.convert_image_dtype(example[self.image_key], tf.float32)),
                           num_parallel_calls=tf.data.AUTOTUNE)


def default_image_key(info):
    """The one `Image` feature of a tfds set's `info`, else `"image"`."""
    import tensorflow_datasets as tfds

    images = [key for key, feature in info.features.items() if isinstance(feature, tfds.features.Image)]
    return images[0] if len(images) == 1 else DEFAULT_IMAGE_KEY


def _split_size(info, split):
    try:
        return info.splits[split].num_examples or None
    except (KeyError, ValueError, TypeError):
        return None
