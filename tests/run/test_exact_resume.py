"""A `tfvae train` run interrupted anywhere and run again ends as the uninterrupted run: bit for bit.

Each case trains a small binarized MLP VAE (several batches per epoch, a validation split, dynamic binarization of
both, KL warm-up over the optimizer's steps) on images in a `.npy` file (held in memory), in a folder of PNGs (read
anew every epoch, or cached in memory) or in TFRecord shards (streamed), interrupts it at one point, runs the same
config again, and compares `history.csv`, the weights, the optimizer's state and the noise state with one
uninterrupted run. The graph runs without XLA, one step per call: bit-identical on one CPU.
"""

import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae.run import training

EPOCHS = 4


class InterruptAt(keras.callbacks.Callback):
    """Ctrl-C at the start of `epoch` (`batch` None) or after its train batch `batch`: a real SIGINT, or a
    `KeyboardInterrupt` raised in the callback."""

    def __init__(self, epoch, batch, real_signal):
        super().__init__()
        self.epoch, self.batch, self.real_signal = epoch, batch, real_signal
        self.current = None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch
        if (epoch, None) == (self.epoch, self.batch):
            self.interrupt()

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            self.interrupt()

    def interrupt(self):
        if self.real_signal:
            os.kill(os.getpid(), signal.SIGINT)  # `RaiseOnInterrupt` turns it into KeyboardInterrupt
        else:
            raise KeyboardInterrupt


IMAGES = np.random.default_rng(0).random((220, 6, 6, 1)).astype(np.float32)


def write_png_folder(folder, images):
    folder.mkdir()
    for index, image in enumerate(images):
        (folder / f"{index:03d}.png").write_bytes(tf.io.encode_png(np.uint8(255 * image)).numpy())
    return str(folder)


def write_tfrecord_shards(folder, images, shards=3):
    folder.mkdir()
    for shard in range(shards):
        with tf.io.TFRecordWriter(str(folder / f"images.tfrecord-{shard:05d}-of-{shards:05d}")) as writer:
            for image in images[shard::shards]:
                encoded = tf.io.encode_png(np.uint8(255 * image)).numpy()
                feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded]))}
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return str(folder)


# Each data set: how it is written, and the settings it trains with.
DATA_SETS = {
    "npy": (lambda folder: np.save(folder / "images.npy", IMAGES) or str(folder / "images.npy"), {"batch_size": 20}),
    "png folder": (lambda folder: write_png_folder(folder / "png", IMAGES[:40]), {"batch_size": 8, "cache": "none"}),
    "png folder in memory": (lambda folder: write_png_folder(folder / "png", IMAGES[:40]),
                             {"batch_size": 8, "cache": "memory"}),
    "tfrecords": (lambda folder: write_tfrecord_shards(folder / "records", IMAGES[:48]), {"batch_size": 8}),
}


def config(dataset, run_dir):
    name, path = dataset
    return training.make_config(
        dataset=path, likelihood="bernoulli", binarize=True, latent_size=2, hidden_units=8, epochs=EPOCHS,
        learning_rate=0.01, kl_warmup_steps=15, jit_compile="off", steps_per_execution=1, output_dir=str(run_dir),
        export_root=str(run_dir / "export"), verbose=0, **DATA_SETS[name][1],
    )


def final_state(model):
    return {
        "weights": model.get_weights(),
        "optimizer": [variable.numpy() for variable in model.optimizer.variables],
        "noise": [model.seed_generator.state.numpy()],
    }


def train(dataset, run_dir, monkeypatch=None, interrupt=None):
    """Trains the config in `run_dir`; with `interrupt` (`InterruptAt` arguments), first a run stopped there."""
    if interrupt is not None:
        make_callbacks = training.make_callbacks
        monkeypatch.setattr(training, "make_callbacks",
                            lambda *args, **kwargs: [*make_callbacks(*args, **kwargs), InterruptAt(*interrupt)])
        with pytest.raises(training.TrainingInterrupted):
            training.train(config(dataset, run_dir))
        monkeypatch.undo()
    model, _, _ = training.train(config(dataset, run_dir))
    return (run_dir / "history.csv").read_text(), final_state(model)


@pytest.fixture(scope="module")
def uninterrupted_runs(tmp_path_factory):
    """`{data set name: ((name, path), uninterrupted run's result)}`, each made when first asked for."""
    runs = {}

    def run(name):
        if name not in runs:
            dataset = (name, DATA_SETS[name][0](tmp_path_factory.mktemp("data")))
            runs[name] = dataset, train(dataset, tmp_path_factory.mktemp("uninterrupted"))
        return runs[name]

    return run


# The .npy set: 198 training images in batches of 20, batches 0-8 (the last 18 images of each epoch's order are
# left out). The PNG folder: about 36 training images in batches of 8; TFRecords about 43. (Each epoch's order of
# streamed sets, cached or not, is checked without training in `tests/data/test_epoch_draws.py`.)
@pytest.mark.parametrize(("data_set", "interrupt"), [
    ("npy", (1, None, False)), ("npy", (2, 4, True)), ("npy", (EPOCHS - 1, 8, False)),
    ("png folder", (1, None, False)), ("png folder", (2, 1, True)), ("png folder in memory", (EPOCHS - 1, 2, False)),
    ("tfrecords", (1, None, False)), ("tfrecords", (2, 2, True)),
], ids=lambda value: value if isinstance(value, str) else (
    f"epoch {value[0]} start" if value[1] is None else f"{'SIGINT' if value[2] else 'Ctrl-C'} epoch {value[0]} "
    f"batch {value[1]}"))
def test_an_interrupted_run_resumes_to_the_uninterrupted_run_exactly(uninterrupted_runs, tmp_path, monkeypatch,
                                                                     capsys, data_set, interrupt):
    dataset, (expected_history, expected_state) = uninterrupted_runs(data_set)
    history, state = train(dataset, tmp_path, monkeypatch, interrupt)
    backup = os.path.join(str(tmp_path), "backup")
    assert f"Resuming from epoch {interrupt[0] + 1} of {EPOCHS} ({backup})\n" in capsys.readouterr().out
    assert history == expected_history
    for name, values in expected_state.items():
        for resumed, expected in zip(state[name], values, strict=True):
            np.testing.assert_array_equal(resumed, expected, err_msg=name)
