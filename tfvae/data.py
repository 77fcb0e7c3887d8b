"""Data sets for tfvae: the embedded Frey Face images."""

import importlib.resources

import numpy as np

FREY_FACE_SHAPE = (28, 20)
FREY_FACE_COUNT = 1965


def load_frey_face(flatten=True):
    """The Frey Face images that ship with tfvae, scaled to [0, 1].

    1965 grayscale faces of 28x20 pixels (B. Frey), the continuous-data benchmark of AEVB. Pixel values are the
    original uint8 values divided by 255.

    Args:
        flatten: if True, one row of 560 values per image; if False, images of shape `[28, 20, 1]`.

    Returns:
        A float32 array `[1965, 560]` or `[1965, 28, 20, 1]`.
    """
    resource = importlib.resources.files("tfvae").joinpath("resources", "frey_face.npz")
    with resource.open("rb") as file, np.load(file) as archive:
        images = archive["images"]
    images = images.astype(np.float32) / 255.0
    if flatten:
        return images.reshape(len(images), -1)
    return images[..., np.newaxis]
