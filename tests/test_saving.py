import json
import os

import keras
import numpy as np
from helpers import run_python

# Backs up epoch 1, then makes the backup of epoch 2 fail with a real write error: files may not grow past 4 KB
# (RLIMIT_FSIZE, with SIGXFSZ ignored so that the write fails with EFBIG instead of killing the process).
BACKUP_THEN_FAIL = """
import errno, os, resource, signal
import keras
import numpy as np
from tfvae import saving
backup_dir = {backup_dir!r}
model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(100)])
callback = saving.AtomicBackupAndRestore(backup_dir)
callback.set_model(model)
callback.on_epoch_end(0)
np.save({first_weights!r}, model.get_weights()[0])
model.set_weights([w + 1 for w in model.get_weights()])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, resource.RLIM_INFINITY))
try:
    callback.on_epoch_end(1)
except OSError as error:
    assert error.errno == errno.EFBIG and error.filename.endswith("latest.keras"), error
    print("failed as expected")
"""


def test_a_backup_that_fails_midway_leaves_the_previous_one_intact(tmp_path):
    backup_dir, first_weights = tmp_path / "backup", tmp_path / "first.npy"
    output = run_python(BACKUP_THEN_FAIL.format(backup_dir=str(backup_dir), first_weights=str(first_weights)))
    assert "failed as expected" in output
    assert sorted(os.listdir(backup_dir)) == ["latest.keras", "training_metadata.json"], "no partial file left"
    assert json.loads((backup_dir / "training_metadata.json").read_text())["epoch"] == 1
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(100)])
    model.load_weights(backup_dir / "latest.keras")
    np.testing.assert_array_equal(model.get_weights()[0], np.load(first_weights))
