"""The Frey Face images as a `tensorflow_datasets` builder: `tfds.load("frey_face")` works offline.

The 1965 images ship inside tfvae (`tfvae/resources/frey_face.npz`), so preparing the data set reads that file and
downloads nothing. The split is fixed: a permutation drawn with seed 0 puts `TEST_SIZE` images in `test` and the
rest in `train`.
"""

import importlib.resources

import numpy as np
import tensorflow_datasets as tfds

IMAGE_SHAPE = (28, 20, 1)
TEST_SIZE = 200
SPLIT_SEED = 0


def packaged_images():
    """The shipped images, uint8 `[1965, 28, 20]`, in the original order."""
    resource = importlib.resources.files("tfvae").joinpath("resources", "frey_face.npz")
    with resource.open("rb") as file, np.load(file) as archive:
        return archive["images"]


def split_indices():
    """`{"train": indices, "test": indices}` into the original order, the same on every machine."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(packaged_images()))
    return {"train": np.sort(order[TEST_SIZE:]), "test": np.sort(order[:TEST_SIZE])}


class FreyFace(tfds.core.GeneratorBasedBuilder):
    """1965 grayscale faces of 28x20 pixels (B. Frey), the continuous-data benchmark of AEVB."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The images of frey_rawface.mat, split 1765 train / 200 test."}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=IMAGE_SHAPE)}),
            homepage="https://cs.nyu.edu/~roweis/data.html",
            citation="Brendan J. Frey, Frey Face data set, distributed by Sam Roweis.",
        )

    def _split_generators(self, dl_manager):
        images = packaged_images()
        return {name: self._generate_examples(images, indices) for name, indices in split_indices().items()}

    def _generate_examples(self, images, indices):
        for index in indices:
            yield int(index), {"image": images[index][..., np.newaxis]}
