import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# tfds data sets prepared by the tests (Frey Face) go to a scratch folder, inherited by the tests' subprocesses.
os.environ.setdefault("TFDS_DATA_DIR", tempfile.mkdtemp(prefix="tfvae-tests-tfds-"))

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
