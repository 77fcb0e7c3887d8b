"""The files users point tfvae at: real photos beside the awkward ones (grayscale, RGBA and 16-bit PNGs, a truncated
JPEG, `notes.txt`, `.DS_Store`), a single image file, a folder of only bad files, bad TFRecords in the validation
part. Every bad image is named in one line (or skipped and named), never a traceback or a decoder's own message."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from PIL import Image

from tfvae import data
from tfvae.data import sources

TFVAE = os.path.join(os.path.dirname(sys.executable), "tfvae")
SIDE = 32


def crop(photo, index):
    """A `SIDE`-pixel crop of a real photo, a different one for each index."""
    offset = 40 * index
    return photo[offset : offset + SIDE, offset : offset + SIDE]


def encoded(pixels, image_format, **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, image_format, **options)
    return buffer.getvalue()


def truncated_jpeg():
    """The first half of a real JPEG: libjpeg stops in the middle of the scan."""
    jpeg = encoded(crop(skimage.data.coffee(), 1), "JPEG")
    return jpeg[: len(jpeg) // 2]


def header_only_jpeg():
    """A JPEG cut inside its header, on which libjpeg prints "Improper call to JPEG library in state 201"."""
    return encoded(crop(skimage.data.coffee(), 2), "JPEG")[:300]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder as users have them: JPEG and PNG photos, grayscale, RGBA and 16-bit PNGs, and files that are not
    images at all."""
    root = tmp_path_factory.mktemp("photos")
    astronaut, chelsea = skimage.data.astronaut(), skimage.data.chelsea()
    for index in range(4):
        (root / f"b{index}.jpg").write_bytes(encoded(crop(astronaut, index), "JPEG", quality=90))
        (root / f"c{index}.png").write_bytes(encoded(crop(chelsea, index), "PNG"))
    (root / "gray.png").write_bytes(encoded(crop(skimage.data.camera(), 0), "PNG"))
    (root / "rgba.png").write_bytes(encoded(np.dstack([crop(astronaut, 5), np.full((SIDE, SIDE), 200, np.uint8)]),
                                            "PNG"))
    (root / "deep.png").write_bytes(encoded(crop(skimage.data.camera(), 1).astype(np.uint16) * 257, "PNG"))
    (root / "notes.txt").write_text("taken in the lab")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + bytes(100))
    return root


@pytest.fixture
def first_is_truncated(photos, tmp_path):
    """The photos with a truncated JPEG first in sorted order."""
    folder = tmp_path / "first_bad"
    folder.mkdir()
    for path in photos.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "a_truncated.jpg").write_bytes(truncated_jpeg())
    return folder


def test_real_photos_with_awkward_files_open_as_one_rgb_set(photos):
    images = data.open_images(str(photos), channels=3)
    pixels = images.take()
    assert images.count == 11 and pixels.shape == (11, SIDE, SIDE, 3) and images.skipped == set()
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0 and pixels.std() > 0.1


def test_a_bad_first_image_is_named_or_skipped(first_is_truncated):
    bad = str(first_is_truncated / "a_truncated.jpg")
    with pytest.raises(data.DataError, match=f"^{bad} cannot be decoded.*--skip-bad-images"):
        data.open_images(str(first_is_truncated))
    skipping = data.open_images(str(first_is_truncated), skip_bad_images=True, channels=3)
    assert len(skipping.take()) == 11 and skipping.skipped == {bad}


def test_a_folder_of_only_bad_files_names_them(tmp_path):
    (tmp_path / "a.jpg").write_bytes(truncated_jpeg())
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(data.DataError, match="a.jpg cannot be decoded.*\\(1 more: .*b.png\\)"):
        data.open_images(str(tmp_path))
    with pytest.raises(data.DataError, match="no image could be read"):
        data.open_images(str(tmp_path), skip_bad_images=True)


def write_tfrecords(path, images):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for image in images:
            feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def test_bad_records_in_the_validation_part_are_named(tmp_path):
    count, fraction = 40, 0.1
    held_out = sources.held_out([f"shard.tfrecord#{index}" for index in range(count)], fraction).numpy()
    first_held_out = int(np.argmax(held_out))
    good = encoded(crop(skimage.data.astronaut(), 0), "PNG")
    write_tfrecords(tmp_path / "shard.tfrecord",
                    [truncated_jpeg() if index == first_held_out else good for index in range(count)])
    source = str(tmp_path / "shard.tfrecord")
    with pytest.raises(data.DataError, match=f"^shard.tfrecord#{first_held_out} cannot be decoded"):
        data.open_training_images(source, validation_split=fraction)
    train, validation = data.open_training_images(source, validation_split=fraction, skip_bad_images=True)
    assert len(validation.take()) == held_out.sum() - 1 and validation.skipped == {f"shard.tfrecord#{first_held_out}"}


def test_a_single_image_file_asks_for_its_folder(photos):
    with pytest.raises(data.DataError, match="b0.jpg is an image file; give the folder that holds the images"):
        data.open_images(str(photos / "b0.jpg"))


def tfvae_train(dataset, run_dir, *flags):
    command = [TFVAE, "train", "--dataset", str(dataset), "--image-size", "32", "--model", "conv", "--latent-size",
               "2", "--epochs", "1", "--batch-size", "4", "--jit-compile", "off", "--quiet", "--output-dir",
               str(run_dir), "--export-root", str(run_dir / "exports"), *flags]
    quiet = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}  # the default
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=quiet)


def test_tfvae_train_names_a_bad_first_image_without_the_decoders_messages(first_is_truncated, tmp_path):
    (first_is_truncated / "b1_header_only.jpg").write_bytes(header_only_jpeg())
    stopped = tfvae_train(first_is_truncated, tmp_path / "stopped")
    assert stopped.returncode == 1 and len(stopped.stderr.splitlines()) == 1, stopped.stderr[-3000:]
    assert stopped.stderr.startswith(f"tfvae train: {first_is_truncated / 'a_truncated.jpg'} cannot be decoded")
    assert "(1 more:" in stopped.stderr and "b1_header_only.jpg" in stopped.stderr
    skipped = tfvae_train(first_is_truncated, tmp_path / "skipped", "--skip-bad-images", "--channels", "3",
                          "--validation-split", "0")
    assert skipped.returncode == 0 and skipped.stderr == "", skipped.stderr[-3000:]
    assert "Skipped 2 bad image(s)" in skipped.stdout and "a_truncated.jpg" in skipped.stdout


def test_a_download_without_network_fails_at_once(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(address, timeout=None):
        raise OSError(f"[Errno -3] Temporary failure in name resolution: {address[0]}")

    def load(*args, **kwargs):
        raise AssertionError("tfds.load ran: it retries for minutes without network")

    monkeypatch.setattr("socket.create_connection", offline)
    monkeypatch.setattr(tfds, "load", load)
    with pytest.raises(data.DataError, match=r"^Cannot download the tfds data set 'mnist': none of its download hosts "
                                             r"\(storage.googleapis.com\) answers .*seems offline\. Point tfvae at"):
        data.open_images("mnist", data_dir=str(tmp_path), download=True)
