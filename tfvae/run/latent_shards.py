"""`tfvae encode`: the posterior of every image or video clip of a set through an autoencoder, as TFRecord shards.

Latent-diffusion users run this once before training their diffusion model. A folder `OUTPUT_DIR` ends up holding
`latents-00000.tfrecord`, `latents-00001.tfrecord`, ... and `latents.json`, which says how to read them.

Each record is a `tf.train.Example` of one example (an image through an `AutoencoderKL`, a clip through an
`AutoencoderKLCogVideoX`), in the set's order; tensors are serialized by `tf.io.serialize_tensor`, and `f`, `r` are
the autoencoder's spatial and temporal compression, `c` its latent channels:

| feature | type | what |
|---|---|---|
| `index` | int64 | the example's position in the set |
| `mean` | bytes | serialized posterior mean, float32 `[h/f, w/f, c]` (image), `[1 + (T-1)/r, h/f, w/f, c]` (clip) |
| `logvar` | bytes | the posterior log-variance, the same shape, clamped as the autoencoder clamps it |

`latents.json` records the autoencoder's class (`family`), `latent_shape`, its `scaling_factor` and `shift_factor`
(and `latents_mean`, `latents_std`, `invert_scale_latents` where the model has them), the data set and, for videos,
`frames` and `frame_stride`.

The moments are stored rather than a sample `z`: a diffusion model's trainer then draws
`z = mean + exp(logvar / 2) * epsilon` afresh at every step, as latent diffusion samples its first stage's posterior,
and scales it as the autoencoder does (`(z - shift_factor) * scaling_factor`, for instance
`tfvae.AutoencoderKL.scale_latents` or `tfvae.AutoencoderKLCogVideoX.scale_latents`), so one pass serves any number
of epochs. A reader parses a record with `tf.io.parse_single_example(record, FEATURES)` and
`tf.io.parse_tensor(mean, tf.float32)`, or calls `read_latents`.

Shards are written whole under a temporary name and renamed once complete: a killed run leaves the finished shards,
and the same command resumes after the last of them (`latents.json` must describe the same run). The examples must
come in a fixed order for that: the first `shards * shard_size` are skipped (decoded, not encoded) on resuming.
"""

import json
import os

import keras
import tensorflow as tf

from tfvae.files.atomic import save_atomically

MANIFEST = "latents.json"
SHARD_NAME = "latents-{:05d}.tfrecord"
FEATURES = {
    "index": tf.io.FixedLenFeature([], tf.int64),
    "mean": tf.io.FixedLenFeature([], tf.string),
    "logvar": tf.io.FixedLenFeature([], tf.string),
}


class LatentShardsError(ValueError):
    """An output folder that holds the shards of another run."""


def encode_to_shards(autoencoder, examples, output_dir, *, description, count=None, batch_size=16, shard_size=1024,
                     verbose=1):
    """Writes the posterior moments of every example of `examples` to `output_dir`, resuming a run killed midway.

    Args:
        autoencoder: a `tfvae.AutoencoderKL` for images or a `tfvae.AutoencoderKLCogVideoX` for clips (inputs in
            [-1, 1], `encode` giving a `DiagonalGaussian`).
        examples: a `tf.data.Dataset` of images `[h, w, c]` or clips `[T, h, w, c]` in [0, 1], one at a time, in
            the same order on every run (unshuffled: `images.batches(n, shuffle=False).unbatch()`, `clips.clips()`).
        output_dir: the folder of the shards; created if missing.
        description: what `latents.json` records of the data (the model file and the data set); a folder whose
            manifest says otherwise is refused.
        count: how many examples there are, for the progress bar and `latents.json`; None when unknown (videos).
        batch_size: examples per `encode` call.
        shard_size: examples per shard.
        verbose: 1 for a progress bar.

    Returns:
        The paths of the shards, in order.

    Raises:
        LatentShardsError: when `output_dir` holds another run's shards.
    """
    if batch_size < 1 or shard_size < 1:
        raise ValueError(f"batch_size and shard_size must be at least 1, got {batch_size} and {shard_size}.")
    os.makedirs(output_dir, exist_ok=True)
    example_shape = examples.element_spec.shape.as_list()
    manifest = {**description, **_autoencoder_description(autoencoder, example_shape), "shard_size": shard_size,
                "count": count, "features": {"index": "int64", "mean": "float32, tf.io.serialize_tensor",
                                             "logvar": "float32, tf.io.serialize_tensor"}}
    _write_or_check_manifest(output_dir, manifest)
    done = _finished_shards(output_dir)
    unit = "clip" if len(example_shape) == 4 else "image"
    progress = keras.utils.Progbar(count, verbose=verbose, unit_name=unit)
    progress.update(done * shard_size if count is None else min(done * shard_size, count))
    paths = [os.path.join(output_dir, SHARD_NAME.format(shard)) for shard in range(done)]
    shard, index = done, done * shard_size
    for chunk in examples.skip(done * shard_size).batch(shard_size):
        records = []
        for start in range(0, len(chunk), batch_size):
            batch = chunk[start:start + batch_size]
            posterior = autoencoder.encode(2.0 * batch - 1.0)
            records += [_record(index + offset, mean, logvar)
                        for offset, (mean, logvar) in enumerate(zip(posterior.mean(), posterior.logvar, strict=True))]
            index += len(batch)
            progress.update(index)
        paths.append(_write_shard(output_dir, shard, records))
        shard += 1
    return paths


def latent_shape(autoencoder, example_shape):
    """The shape of one example's latents: `[h / f, w / f, latent_channels]` for an image `[h, w, c]`, and
    `[1 + (T - 1) / r, h / f, w / f, latent_channels]` for a clip `[T, h, w, c]` (`r`, the autoencoder's
    `temporal_compression_ratio`)."""
    *frames, height, width, _ = example_shape
    factor = autoencoder.downsampling_factor
    frames = [1 + (length - 1) // autoencoder.temporal_compression_ratio for length in frames]
    return [*frames, height // factor, width // factor, autoencoder.latent_channels]


def _autoencoder_description(autoencoder, example_shape):
    """What `latents.json` says of the autoencoder: its class, the latent shape, and how to scale a sample."""
    description = {"family": type(autoencoder).__name__, "latent_shape": latent_shape(autoencoder, example_shape),
                   "scaling_factor": autoencoder.scaling_factor, "shift_factor": autoencoder.shift_factor}
    for name in ("latents_mean", "latents_std", "invert_scale_latents"):
        value = getattr(autoencoder, name, None)
        if value is not None:
            description[name] = list(value) if isinstance(value, tuple) else value
    return description


def read_latents(output_dir):
    """The records of `output_dir` as a `tf.data.Dataset` of `{"index", "mean", "logvar"}`, in order (each moment
    `latent_shape` of `latents.json`)."""
    shards = sorted(tf.io.gfile.glob(os.path.join(output_dir, "latents-*.tfrecord")))

    def parse(record):
        example = tf.io.parse_single_example(record, FEATURES)
        return {"index": example["index"], "mean": tf.io.parse_tensor(example["mean"], tf.float32),
                "logvar": tf.io.parse_tensor(example["logvar"], tf.float32)}

    return tf.data.TFRecordDataset(shards).map(parse)


def _record(index, mean, logvar):
    feature = {
        "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
        "mean": tf.train.Feature(bytes_list=tf.train.BytesList(value=[tf.io.serialize_tensor(mean).numpy()])),
        "logvar": tf.train.Feature(bytes_list=tf.train.BytesList(value=[tf.io.serialize_tensor(logvar).numpy()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_shard(output_dir, shard, records):
    def write(path):
        with tf.io.TFRecordWriter(path) as writer:
            for record in records:
                writer.write(record)

    path = os.path.join(output_dir, SHARD_NAME.format(shard))
    save_atomically(write, path)
    return path


def _finished_shards(output_dir):
    """How many shards, from the first, are complete (renamed into place)."""
    shard = 0
    while os.path.exists(os.path.join(output_dir, SHARD_NAME.format(shard))):
        shard += 1
    return shard


def _write_or_check_manifest(output_dir, manifest):
    path = os.path.join(output_dir, MANIFEST)
    if os.path.exists(path):
        with open(path) as file:
            existing = json.load(file)
        if existing != json.loads(json.dumps(manifest)):
            different = sorted(key for key in manifest.keys() | existing.keys()
                               if existing.get(key) != json.loads(json.dumps(manifest)).get(key))
            raise LatentShardsError(
                f"{output_dir} holds the latents of another run ({', '.join(different)} differ): give another "
                "--output-dir, or remove that folder to start again.")
        return

    def write(temporary):
        with open(temporary, "w") as file:
            json.dump(manifest, file, indent=1)

    save_atomically(write, path)

