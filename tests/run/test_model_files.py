import os

import keras
import numpy as np
from helpers import run_python

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
