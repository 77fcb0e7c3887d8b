"""`tfvae encode`: the posterior of every image of a set through an autoencoder, written as TFRecord shards.

Latent-diffusion users run this once before training their diffusion model. A folder `OUTPUT_DIR` ends up holding
`latents-00000.tfrecord`, `latents-00001.tfrecord`, ... and `latents.json`, which says how to read them.

Each record is a `tf.train.Example` of one image, in the set's order:

| feature | type | what |
|---|---|---|
| `index` | int64 | the image's position in the set |
| `mean` | bytes | `tf.io.serialize_tensor` of the posterior mean, float32 `[h / f, w / f, latent_channels]` |
| `logvar` | bytes | the posterior log-variance, the same shape, clamped as the autoencoder clamps it |

The moments are stored rather than a sample `z`: a diffusion model's trainer then draws
`z = mean + exp(logvar / 2) * epsilon` afresh at every step, as latent diffusion samples its first stage's posterior,
and scales it as the autoencoder does (`(z - shift_factor) * scaling_factor`, both in `latents.json`; for instance
`tfvae.AutoencoderKL.scale_latents`), so one pass serves any number of epochs. A reader parses a record with
`tf.io.parse_single_example(record, FEATURES)` and `tf.io.parse_tensor(mean, tf.float32)`.

Shards are written whole under a temporary name and renamed once complete: a killed run leaves the finished shards,
and the same command resumes after the last of them (`latents.json` must describe the same run).
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


def encode_to_shards(autoencoder, images, output_dir, *, description, batch_size=16, shard_size=1024, verbose=1):
    """Writes the posterior moments of every image of `images` to `output_dir`, resuming a run killed midway.

    Args:
        autoencoder: a `tfvae.AutoencoderKL` (images in [-1, 1], `encode` giving a `DiagonalGaussian`).
        images: a `tfvae.data` image set (`open_images`), images in [0, 1].
        output_dir: the folder of the shards; created if missing.
        description: what `latents.json` records of the run (the model and the data set); a folder whose
            manifest says otherwise is refused.
        batch_size: images per `encode` call.
        shard_size: images per shard.
        verbose: 1 for a progress bar.

    Returns:
        The paths of the shards, in order.

    Raises:
        LatentShardsError: when `output_dir` holds another run's shards.
    """
    if batch_size < 1 or shard_size < 1:
        raise ValueError(f"batch_size and shard_size must be at least 1, got {batch_size} and {shard_size}.")
    os.makedirs(output_dir, exist_ok=True)
    manifest = {**description, "shard_size": shard_size, "count": images.count,
                "scaling_factor": autoencoder.scaling_factor, "shift_factor": autoencoder.shift_factor,
                "features": {"index": "int64", "mean": "float32, tf.io.serialize_tensor",
                             "logvar": "float32, tf.io.serialize_tensor"}}
    _write_or_check_manifest(output_dir, manifest)
    done = _finished_shards(output_dir)
    batches = images.batches(batch_size, shuffle=False, flatten=False).unbatch().skip(done * shard_size)
    progress = keras.utils.Progbar(images.count, verbose=verbose, unit_name="image")
    progress.update(min(done * shard_size, images.count or 0))
    paths = [os.path.join(output_dir, SHARD_NAME.format(shard)) for shard in range(done)]
    shard, index = done, done * shard_size
    for chunk in batches.batch(shard_size):
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


def read_latents(output_dir):
    """The records of `output_dir` as a `tf.data.Dataset` of `{"index", "mean", "logvar"}`, in order."""
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

