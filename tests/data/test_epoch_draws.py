"""A pipeline draws each epoch's order and binarization from its seed and the epoch alone: the same in any process."""

import numpy as np

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
