import os
import threading

import keras
import numpy as np
from helpers import run_python
from keras.src.backend.common import global_state

from tfvae import VAE, networks
from tfvae.files import atomic
from tfvae.run import model_files
from tfvae.run.resumable_run import ResumableRun

# Saves a model once, then makes the second save fail with a real write error: files may not grow past 4 KB
# (RLIMIT_FSIZE, with SIGXFSZ ignored so that the write fails with EFBIG instead of killing the process).
SAVE_THEN_FAIL = """
import errno, os, resource, signal
import keras
import numpy as np
from tfvae.files import atomic
path = {path!r}
model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(100)])
atomic.save_atomically(model.save, path)
np.save({first_weights!r}, model.get_weights()[0])
model.set_weights([w + 1 for w in model.get_weights()])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, resource.RLIM_INFINITY))
try:
    atomic.save_atomically(model.save, path)
except OSError as error:
    assert error.errno == errno.EFBIG and error.filename == path, error
    print("failed as expected")
"""


def test_a_save_that_fails_midway_leaves_the_previous_file_intact(tmp_path):
    path, first_weights = tmp_path / "model.keras", tmp_path / "first.npy"
    output = run_python(SAVE_THEN_FAIL.format(path=str(path), first_weights=str(first_weights)))
    assert "failed as expected" in output
    assert sorted(os.listdir(tmp_path)) == ["first.npy", "model.keras"], "no partial file left"
    model = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(model.get_weights()[0], np.load(first_weights))


def test_backups_after_the_first_build_no_reference_objects_for_keras(tmp_path, rng, monkeypatch):
    # Keras' state as in a fresh process, nothing saved or loaded yet, for this test only.
    monkeypatch.setattr(global_state, "GLOBAL_STATE_TRACKER", threading.local())
    built, per_backup = [], []  # the layers built by each backup's save
    layer_init = keras.layers.Layer.__init__
    monkeypatch.setattr(keras.layers.Layer, "__init__",
                        lambda layer, *args, **kwargs: built.append(type(layer)) or layer_init(layer, *args, **kwargs))
    save_atomically = atomic.save_atomically

    def counted(save, path):
        before = len(built)
        save_atomically(save, path)
        if os.path.basename(os.path.dirname(path)).startswith(".staging-epoch-"):  # not a copy to best.keras
            per_backup.append(len(built) - before)

    monkeypatch.setattr(model_files, "save_atomically", counted)
    model = VAE(networks.gaussian_mlp_encoder(8, 2, 4), networks.bernoulli_mlp_decoder(2, 8, 4), seed=0)
    model.compile()
    data = rng.random((16, 8)).astype(np.float32)
    model.fit(data, epochs=3, batch_size=8, verbose=0, callbacks=[ResumableRun(str(tmp_path / "run"))])
    assert len(per_backup) == 3 and per_backup[0] > 0 and per_backup[1:] == [0, 0], per_backup
