"""`fit`'s progress bar counts the train steps that ran, also under several steps per call on data of unknown size."""

import re

import tensorflow as tf
from small_models import binary_data, make_vae


def test_the_progress_bar_counts_the_steps_that_ran_on_data_of_unknown_size(rng, capsys):
    data = binary_data(rng, 110)
    batches = tf.data.Dataset.from_tensor_slices(data).filter(lambda example: True).batch(10)  # 11, size unknown
    assert int(batches.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    model = make_vae("bernoulli")
    model.compile(steps_per_execution=10)
    model.fit(batches, epochs=2, verbose=1)
    assert int(model.optimizer.iterations) == 22
    output = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # without the terminal's colours
    epochs = output.split("Epoch 2/2")
    assert len(epochs) == 2
    for epoch in epochs:
        counts = re.findall(r"(?<!Epoch )\b(\d+)/(\d+|Unknown)\b", epoch)
        assert counts and counts[-1] == ("11", "11"), counts  # Keras' own bar ended at 20/20
        assert all(int(seen) <= 11 for seen, _ in counts), counts
