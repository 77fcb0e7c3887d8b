import gzip
import hashlib
import os
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from helpers import SHARED_DATA

from tfvae import data
from tfvae.data import frey_face

SHARED_FREY = os.path.join(SHARED_DATA, "frey", "frey_rawface.mat")
SHARED_MNIST = os.path.join(SHARED_DATA, "mnist")
needs_shared_mnist = pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason="../shared/data/mnist is absent")


@pytest.mark.skipif(not os.path.exists(SHARED_FREY), reason="the original Frey Face file is not beside the repo")
def test_shipped_frey_face_equals_the_original_matlab_file():
    scipy_io = pytest.importorskip("scipy.io")
    with open(SHARED_FREY, "rb") as file:
        assert hashlib.md5(file.read()).hexdigest() == "5aeb024d42b8a6091f30e5eb18c8a48d"
    original = scipy_io.loadmat(SHARED_FREY)["ff"].T.reshape(-1, 28, 20)
    np.testing.assert_array_equal(frey_face.packaged_images(), original)


def test_frey_face_loads_offline_through_its_tfds_builder(tmp_path):
    train = tfds.load("frey_face", split="train", data_dir=str(tmp_path), batch_size=-1)["image"].numpy()
    test = tfds.load("frey_face", split="test", data_dir=str(tmp_path), batch_size=-1)["image"].numpy()
    assert train.shape == (1765, 28, 20, 1) and test.shape == (200, 28, 20, 1) and train.dtype == np.uint8
    images = frey_face.packaged_images()
    indices = frey_face.split_indices()
    assert not set(indices["train"]) & set(indices["test"])
    assert len(set(indices["train"]) | set(indices["test"])) == 1965
    np.testing.assert_array_equal(np.sort(test.reshape(200, -1), axis=0),
                                  np.sort(images[indices["test"]].reshape(200, -1), axis=0))
    scaled = data.load_images("frey_face", "test", data_dir=str(tmp_path))
    assert scaled.dtype == np.float32 and 0 < scaled.min() and scaled.max() < 1
    np.testing.assert_allclose(np.sort(scaled.ravel()), np.sort(test.ravel() / 255.0), rtol=1e-6)


def test_the_frey_face_split_is_the_published_one():
    """The split is pinned: a change of NumPy's generator or of the code would silently change every result."""
    indices = frey_face.split_indices()
    digests = {split: hashlib.sha256(indices[split].astype("<i8").tobytes()).hexdigest() for split in indices}
    assert digests == {
        "train": "0e3020294c12d310cd08cb8c4259c394097f591a6bfa1960aaed0c27e7e0d8f3",
        "test": "d5843135f03bb409e330f55505ae57362704f70df86edbf52444f70eef70fb77",
    }
    assert indices["test"][:5].tolist() == [12, 20, 41, 68, 70]


@needs_shared_mnist
def test_real_mnist_idx_files_load_with_their_original_checksums():
    with gzip.open(os.path.join(SHARED_MNIST, "t10k-images-idx3-ubyte.gz")) as file:
        assert hashlib.md5(file.read()).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    train = data.load_images(SHARED_MNIST, "train")
    test = data.load_images(SHARED_MNIST, "test")
    assert train.shape == (60000, 28, 28, 1) and test.shape == (10000, 28, 28, 1)
    assert train.dtype == np.float32 and train.min() == 0.0 and train.max() == 1.0
    labels = data.read_idx(os.path.join(SHARED_MNIST, "train-labels-idx1-ubyte.gz"))
    assert labels.shape == (60000,) and labels[0] == 5
    assert data.read_idx(os.path.join(SHARED_MNIST, "t10k-labels-idx1-ubyte.gz"))[0] == 7


def write_idx(path, array, compress):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    content = header + array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as file:
        file.write(content)
    return content


@pytest.mark.parametrize("compress", [True, False])
def test_idx_folders_read_gzipped_or_raw_files(tmp_path, rng, compress):
    images = rng.integers(0, 256, (5, 4, 3))
    name = "train-images-idx3-ubyte" + (".gz" if compress else "")
    write_idx(tmp_path / name, images, compress)
    np.testing.assert_allclose(data.load_images(str(tmp_path), "train")[..., 0], images / 255.0, rtol=1e-6)
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte"):
        data.load_images(str(tmp_path), "test")


def test_truncated_and_corrupt_idx_files_give_clear_errors(tmp_path, rng):
    content = write_idx(tmp_path / "full", rng.integers(0, 256, (5, 4, 3)), compress=False)
    (tmp_path / "truncated").write_bytes(content[:-7])
    with pytest.raises(data.DataError, match="truncated or corrupt"):
        data.read_idx(str(tmp_path / "truncated"))
    (tmp_path / "notidx").write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(data.DataError, match="not an IDX file"):
        data.read_idx(str(tmp_path / "notidx"))
    (tmp_path / "cut.gz").write_bytes(gzip.compress(content)[:40])
    with pytest.raises(data.DataError, match="cannot read"):
        data.read_idx(str(tmp_path / "cut.gz"))


def test_numpy_array_files(tmp_path, rng):
    images = rng.integers(0, 256, (6, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    np.testing.assert_allclose(data.load_images(str(tmp_path / "images.npy"))[..., 0], images / 255.0)
    floats = rng.random((6, 10)).astype(np.float32)
    np.savez(tmp_path / "split.npz", train=floats, test=floats[:2])
    np.testing.assert_array_equal(data.load_images(str(tmp_path / "split.npz"), "test"), floats[:2])
    np.savez(tmp_path / "ambiguous.npz", a=floats, b=floats)
    with pytest.raises(data.DataError, match="'images' or 'x'"):
        data.load_images(str(tmp_path / "ambiguous.npz"))
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(data.DataError, match="cannot read it"):
        data.load_images(str(tmp_path / "broken.npz"))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_tfds_image_sets_are_scaled_to_the_unit_interval(tmp_path, name):
    with tfds.testing.mock_data(num_examples=12, data_dir=str(tmp_path)):
        images = data.load_images(name, "test", data_dir=str(tmp_path))
    assert images.shape == (12, 28, 28, 1) and images.dtype == np.float32
    assert images.max() <= 1.0 and images.max() > 0.5


def test_binarized_mnist_keeps_its_zero_one_pixels(tmp_path, rng):
    binary = (rng.random((10, 28, 28, 1)) < 0.3).astype(np.uint8)

    def as_dataset(self, split, **kwargs):
        return tf.data.Dataset.from_tensor_slices({"image": binary})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset, data_dir=str(tmp_path)):
        images = data.load_images("binarized_mnist", "validation", data_dir=str(tmp_path))
    np.testing.assert_array_equal(images, binary.astype(np.float32))


def test_a_tfds_set_that_is_not_downloaded_fails_fast_with_the_local_file_hint(tmp_path):
    start = time.monotonic()
    with pytest.raises(data.DataError, match="downloads are off.*IDX files"):
        data.load_images("mnist", "train", data_dir=str(tmp_path))
    assert time.monotonic() - start < 30


def test_unknown_sources_are_named_in_the_error():
    with pytest.raises(data.DataError, match="frey_face"):
        data.load_images("no_such_set")


def epoch(dataset):
    return np.concatenate([batch.numpy() for batch in dataset])


def test_pipeline_binarizes_anew_every_epoch_and_reproducibly(rng):
    images = np.full((64, 4, 4, 1), 0.3, np.float32)
    dataset = data.pipeline(images, batch_size=16, shuffle=False, binarize=True, seed=5)
    first, second = epoch(dataset), epoch(dataset)
    assert first.shape == (64, 16) and set(np.unique(first)) <= {0.0, 1.0}
    assert not np.array_equal(first, second), "dynamic binarization draws new pixels every epoch"
    assert abs(np.concatenate([first, second]).mean() - 0.3) < 0.05
    again = data.pipeline(images, batch_size=16, shuffle=False, binarize=True, seed=5)
    np.testing.assert_array_equal(epoch(again), first)


def test_pipeline_reshuffles_every_epoch_and_keeps_image_shape(rng):
    images = rng.random((50, 6, 4, 1)).astype(np.float32)
    dataset = data.pipeline(images, batch_size=8, shuffle=True, flatten=False, seed=1)
    first, second = epoch(dataset), epoch(dataset)
    assert first.shape == (50, 6, 4, 1)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(np.sort(first.ravel()), np.sort(images.ravel()))
    assert not dataset.options().autotune.enabled, "deleting an autotuned iterator can stall an epoch's start"
    in_order = data.pipeline(images, batch_size=8, shuffle=False)
    np.testing.assert_array_equal(epoch(in_order), images.reshape(50, 24))


def test_pipeline_orders_follow_the_seed(rng):
    images = rng.random((40, 3)).astype(np.float32)

    def two_epochs(seed):
        dataset = data.pipeline(images, batch_size=8, seed=seed)
        return [epoch(dataset) for _ in range(2)]

    first, again, other = two_epochs(3), two_epochs(3), two_epochs(4)
    for seen, repeated in zip(first, again, strict=True):
        np.testing.assert_array_equal(seen, repeated)
    assert not np.array_equal(first[0], other[0]) and not np.array_equal(first[1], other[1])
