"""A pipeline draws each epoch's order and binarization from its seed and the epoch alone: the same in any process."""

import numpy as np
import pytest
import tensorflow as tf

from tfvae import data


def one_pass(dataset):
    return np.concatenate([batch.numpy() for batch in dataset])


def counted_pipeline(images):
    epochs = data.EpochCounter()
    return epochs, data.pipeline(images, batch_size=8, shuffle=True, binarize=True, seed=3, epochs=epochs)


def test_a_new_pipeline_set_to_an_epoch_draws_what_the_first_drew_in_that_epoch(rng):
    images = rng.random((30, 4)).astype(np.float32)
    _, batches = counted_pipeline(images)
    passes = [one_pass(batches) for _ in range(3)]  # epochs 0, 1, 2: the counter advances with each pass
    assert not np.array_equal(passes[1], passes[2]), "a new order and new noise every epoch"
    resumed_epochs, resumed = counted_pipeline(images)
    one_pass(resumed)  # a pass before fit's first epoch (Keras builds a model from one batch) is not counted
    resumed_epochs.on_epoch_begin(2)  # as `fit(..., initial_epoch=2, callbacks=[resumed_epochs])` sets it
    np.testing.assert_array_equal(one_pass(resumed), passes[2])
    resumed_epochs.on_epoch_begin(1)
    np.testing.assert_array_equal(one_pass(resumed), passes[1])


def write_numbered_images(tmp_path, kind, count=24):
    """`count` 2x2 gray images, image `k` all `k / 255`: a PNG folder, or TFRecords in 3 shards."""
    encoded = [tf.io.encode_png(np.full((2, 2, 1), k, np.uint8)).numpy() for k in range(count)]
    if kind == "folder":
        for k, image in enumerate(encoded):
            (tmp_path / f"{k:02d}.png").write_bytes(image)
        return str(tmp_path)
    for shard in range(3):
        with tf.io.TFRecordWriter(str(tmp_path / f"images.tfrecord-{shard}")) as writer:
            for image in encoded[shard::3]:
                feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))}
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return str(tmp_path)


@pytest.mark.parametrize(("kind", "cache"), [("folder", "none"), ("folder", "memory"), ("tfrecords", "auto")],
                         ids=["folder read every epoch", "folder cached in memory", "tfrecords streamed"])
def test_a_streamed_set_draws_each_epochs_order_from_the_seed_and_the_epoch_alone(tmp_path, kind, cache):
    source = write_numbered_images(tmp_path, kind)

    def counted_batches():  # a new set and pipeline, as a resumed process makes them
        epochs = data.EpochCounter()
        images = data.open_images(source, cache=cache)
        return epochs, images.batches(5, shuffle=True, seed=3, epochs=epochs)

    def order(batches):  # the numbers of the images of one pass, in the order read
        return [round(value) for value in one_pass(batches)[:, 0] * 255]

    _, batches = counted_batches()
    passes = [order(batches) for _ in range(3)]
    for numbers in passes:
        assert sorted(numbers) == list(range(24)), "every image once an epoch"
    assert passes[0] != list(range(24)) and passes[1] != passes[0] and passes[2] != passes[1]
    resumed_epochs, resumed = counted_batches()
    resumed_epochs.on_epoch_begin(2)
    assert order(resumed) == passes[2]
    resumed_epochs.on_epoch_begin(1)
    assert order(resumed) == passes[1]
