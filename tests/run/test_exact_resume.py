"""A `tfvae train` run interrupted anywhere and run again ends as the uninterrupted run: bit for bit.

Each case trains a small binarized MLP VAE on images in a `.npy` file (several batches per epoch, a validation
split, dynamic binarization of both, KL warm-up over the optimizer's steps), interrupts it at one point, runs the
same config again, and compares `history.csv`, the weights, the optimizer's state and the noise state with one
uninterrupted run. The graph runs without XLA, one step per call: bit-identical on one CPU.
"""

import os
import signal

import keras
import numpy as np
import pytest

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


@pytest.fixture(scope="module")
def images_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "images.npy"
    np.save(path, np.random.default_rng(0).random((220, 6, 6, 1)).astype(np.float32))
    return str(path)


def config(images_file, run_dir):
    return training.make_config(
        dataset=images_file, likelihood="bernoulli", binarize=True, latent_size=2, hidden_units=8, epochs=EPOCHS,
        batch_size=20, learning_rate=0.01, kl_warmup_steps=15, jit_compile="off", steps_per_execution=1,
        output_dir=str(run_dir), export_root=str(run_dir / "export"), verbose=0,
    )


def final_state(model):
    return {
        "weights": model.get_weights(),
        "optimizer": [variable.numpy() for variable in model.optimizer.variables],
        "noise": [model.seed_generator.state.numpy()],
    }


def train(images_file, run_dir, monkeypatch=None, interrupt=None):
    """Trains the config in `run_dir`; with `interrupt` (`InterruptAt` arguments), first a run stopped there."""
    if interrupt is not None:
        make_callbacks = training.make_callbacks
        monkeypatch.setattr(training, "make_callbacks",
                            lambda *args, **kwargs: [*make_callbacks(*args, **kwargs), InterruptAt(*interrupt)])
        with pytest.raises(training.TrainingInterrupted):
            training.train(config(images_file, run_dir))
        monkeypatch.undo()
    model, _, _ = training.train(config(images_file, run_dir))
    return (run_dir / "history.csv").read_text(), final_state(model)


@pytest.fixture(scope="module")
def uninterrupted(images_file, tmp_path_factory):
    return train(images_file, tmp_path_factory.mktemp("uninterrupted"))


# 198 training images in batches of 20: batches 0-8 (the last 18 images of each epoch's order are left out).
@pytest.mark.parametrize("interrupt", [(1, None, False), (2, 4, True), (EPOCHS - 1, 8, False)],
                         ids=["after epoch 1", "SIGINT mid-epoch 3", "last batch of the last epoch"])
def test_an_interrupted_run_resumes_to_the_uninterrupted_run_exactly(images_file, uninterrupted, tmp_path,
                                                                     monkeypatch, capsys, interrupt):
    history, state = train(images_file, tmp_path, monkeypatch, interrupt)
    backup = os.path.join(str(tmp_path), "backup")
    assert f"Resuming from epoch {interrupt[0] + 1} of {EPOCHS} ({backup})\n" in capsys.readouterr().out
    expected_history, expected_state = uninterrupted
    assert history == expected_history
    for name, values in expected_state.items():
        for resumed, expected in zip(state[name], values, strict=True):
            np.testing.assert_array_equal(resumed, expected, err_msg=name)
