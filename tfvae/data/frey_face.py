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
# What preparing writes (PNG-encoded images in TFRecords), measured with tfds 4.9 and TensorFlow 2.21.
SPLIT_BYTES = {"train": 1_020_718, "test": 115_702}
DESCRIPTION = (
    "1965 grayscale images, 28x20 pixels, of Brendan Frey's face, taken from sequential frames of a short video: the "
    "continuous-data benchmark of Kingma and Welling's AEVB (2014). Shipped with tfvae; split 1765 train / 200 test "
    "by a fixed permutation."
)
CITATION = """@article{roweis2000lle,
  title = {Nonlinear Dimensionality Reduction by Locally Linear Embedding},
  author = {Roweis, Sam T. and Saul, Lawrence K.},
  journal = {Science},
  volume = {290},
  number = {5500},
  pages = {2323--2326},
  year = {2000}
}"""


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
        sizes = {name: len(indices) for name, indices in split_indices().items()}
        return tfds.core.DatasetInfo(
            builder=self,
            description=DESCRIPTION,
            features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=IMAGE_SHAPE)}),
            homepage="https://cs.nyu.edu/~roweis/data.html",
            citation=CITATION,
            split_dict=tfds.core.SplitDict(
                [tfds.core.SplitInfo(name=name, shard_lengths=[sizes[name]], num_bytes=SPLIT_BYTES[name])
                 for name in ("train", "test")]
            ),
        )

    def _log_download_bytes(self):
        """Replaces tfds' "Downloading and preparing dataset <size>" line: nothing is downloaded."""
        print(f"Preparing the Frey Face images shipped with tfvae ({self.info.dataset_size}) in {self.data_dir}...")

    def _split_generators(self, dl_manager):
        images = packaged_images()
        return {name: self._generate_examples(images, indices) for name, indices in split_indices().items()}

    def _generate_examples(self, images, indices):
        for index in indices:
            yield int(index), {"image": images[index][..., np.newaxis]}
