import hashlib
import os

import numpy as np
import pytest

from helpers import SHARED_DATA
from tfvae import data

SHARED_FREY = os.path.join(SHARED_DATA, "frey", "frey_rawface.mat")


def test_frey_face_ships_with_the_package():
    images = data.load_frey_face()
    assert images.shape == (1965, 560) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_allclose([images.min(), images.max()], [8 / 255, 238 / 255], rtol=1e-6)
    assert data.load_frey_face(flatten=False).shape == (1965, 28, 20, 1)


@pytest.mark.skipif(not os.path.exists(SHARED_FREY), reason="the original Frey Face file is not beside the repo")
def test_frey_face_equals_the_original_matlab_file():
    scipy_io = pytest.importorskip("scipy.io")
    with open(SHARED_FREY, "rb") as file:
        assert hashlib.md5(file.read()).hexdigest() == "5aeb024d42b8a6091f30e5eb18c8a48d"
    original = scipy_io.loadmat(SHARED_FREY)["ff"].T.reshape(-1, 28, 20)
    shipped = np.rint(data.load_frey_face(flatten=False)[..., 0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(shipped, original)
