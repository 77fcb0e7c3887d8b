"""Images from folders, TFRecords and tfds sets, streamed through tf.data; the scaling of array files."""

import json
import os
import re
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from tfvae import data
from tfvae.run import training


def save(path, pixels, **options):
    """Writes `pixels` (uint8 `[h, w]` or `[h, w, 3]`) as an image file whose format follows the suffix."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path, **options)


def colours(rng, height, width, channels=3):
    return rng.integers(0, 256, (height, width, channels) if channels == 3 else (height, width), dtype=np.uint8)


def epoch(dataset):
    return np.concatenate([batch.numpy() for batch in dataset])


# ---- array files: the scaling of each dtype ----

@pytest.mark.parametrize("dtype, scale", [(np.uint8, 255), (np.uint16, 65535)])
def test_integer_pixels_are_scaled_by_their_dtype_range(tmp_path, rng, dtype, scale):
    pixels = rng.integers(0, scale + 1, (4, 5, 6), dtype=dtype)
    pixels[0, 0, 0] = scale
    np.save(tmp_path / "images.npy", pixels)
    images = data.load_images(str(tmp_path / "images.npy"))
    np.testing.assert_allclose(images[..., 0], pixels / scale, rtol=1e-6)
    assert images.max() == 1.0


def test_binary_integer_images_and_floats_are_kept(tmp_path, rng):
    binary = (rng.random((4, 6, 6)) < 0.5).astype(np.uint8)
    np.save(tmp_path / "bin01.npy", binary)
    np.testing.assert_array_equal(data.load_images(str(tmp_path / "bin01.npy"))[..., 0], binary)
    floats = rng.random((4, 6, 6, 1)).astype(np.float32)
    np.save(tmp_path / "floats.npy", floats)
    np.testing.assert_array_equal(data.load_images(str(tmp_path / "floats.npy")), floats)


def test_grayscale_arrays_are_resized_and_kept_gray_or_made_rgb(tmp_path, rng):
    gray = rng.random((3, 8, 8, 1)).astype(np.float32)
    np.save(tmp_path / "gray.npy", gray)
    resized = data.open_images(str(tmp_path / "gray.npy"), image_size=4, channels=1).take()
    assert resized.shape == (3, 4, 4, 1)
    np.testing.assert_allclose(resized, tf.image.resize(gray, (4, 4), antialias=True), atol=1e-6)
    rgb = data.open_images(str(tmp_path / "gray.npy"), channels=3).take()
    np.testing.assert_array_equal(rgb, np.repeat(gray, 3, axis=-1))


def test_values_outside_the_unit_interval_after_scaling_name_the_file(tmp_path):
    np.save(tmp_path / "wide.npy", np.full((3, 4, 4), 2.5, np.float32))
    with pytest.raises(data.DataError, match="wide.npy.*\\[2.5, 2.5\\]"):
        data.load_images(str(tmp_path / "wide.npy"))
    np.save(tmp_path / "int32.npy", np.full((3, 4, 4), 7, np.int32))
    with pytest.raises(data.DataError, match="int32.npy.*dtype int32"):
        data.load_images(str(tmp_path / "int32.npy"))


# ---- folders of images ----

@pytest.fixture
def mixed_folder(tmp_path, rng):
    """PNG, JPEG, BMP and GIF files, RGB and grayscale, of several sizes, in nested folders; hidden files beside."""
    root = tmp_path / "photos"
    save(str(root / "a.png"), colours(rng, 8, 12))
    save(str(root / "b.jpg"), colours(rng, 10, 10, channels=1), quality=95)
    save(str(root / "nested" / "c.bmp"), colours(rng, 16, 8))
    save(str(root / "nested" / "d.gif"), colours(rng, 9, 9, channels=1))
    save(str(root / ".hidden.png"), colours(rng, 8, 8))
    save(str(root / ".cache" / "e.png"), colours(rng, 8, 8))
    (root / "notes.txt").write_text("not an image")
    return root


def test_a_folder_of_mixed_images_is_read_recursively_in_order_resized_and_converted(mixed_folder):
    images = data.open_images(str(mixed_folder), image_size=6, channels=3)
    assert images.source.paths == [str(mixed_folder / name) for name in ("a.png", "b.jpg", "nested/c.bmp",
                                                                         "nested/d.gif")]
    array = images.take()
    assert array.shape == (4, 6, 6, 3) and array.dtype == np.float32 and 0 <= array.min() and array.max() <= 1
    gray = data.open_images(str(mixed_folder), image_size="4x6", channels=1).take()
    assert gray.shape == (4, 4, 6, 1)
    np.testing.assert_allclose(gray[1, ..., 0], array[1, 1:5, :, 0], atol=0.03)  # a grayscale JPEG stays gray
    np.testing.assert_array_equal(array[3, ..., 0], array[3, ..., 2])  # a grayscale GIF becomes equal RGB channels


def test_pixels_are_the_decoded_file_scaled_and_the_centre_is_cropped(tmp_path, rng):
    pixels = colours(rng, 6, 10)
    save(str(tmp_path / "wide" / "x.png"), pixels)
    same_size = data.open_images(str(tmp_path / "wide")).take()
    np.testing.assert_allclose(same_size[0], pixels / 255.0, rtol=1e-6)
    cropped = data.open_images(str(tmp_path / "wide"), image_size="6x6").take()
    np.testing.assert_allclose(cropped[0], pixels[:, 2:8] / 255.0, rtol=1e-6)  # the short side fits: no resampling
    checkerboard = (np.indices((9, 9)).sum(axis=0) % 2 * 255).astype(np.uint8)
    save(str(tmp_path / "checks" / "x.png"), checkerboard)
    shrunk = data.open_images(str(tmp_path / "checks"), image_size=3).take()[0, ..., 0]
    assert abs(shrunk[1, 1] - 0.5) < 0.1, "antialiased: the centre averages its area instead of sampling one pixel"


def test_a_16_bit_png_is_read_at_8_bits_in_the_unit_interval(tmp_path):
    pixels = np.array([[0, 1000, 40000, 65535]], np.uint16)
    tf.io.write_file(str(tmp_path / "deep" / "x.png"), tf.io.encode_png(pixels[..., np.newaxis]))
    np.testing.assert_allclose(data.open_images(str(tmp_path / "deep")).take()[0, ..., 0], pixels / 65535.0,
                               atol=1 / 255)


def test_an_array_file_is_read_once_and_split_by_the_seed(tmp_path, rng, monkeypatch):
    images = rng.integers(0, 256, (40, 4, 4, 1), dtype=np.uint8)
    np.savez(tmp_path / "set.npz", train=images)
    reads = []
    load_array_images = data.arrays.load_array_images
    monkeypatch.setattr(data.arrays, "load_array_images", lambda *args: reads.append(args) or load_array_images(*args))
    train, validation = data.open_training_images(str(tmp_path / "set.npz"), 0.25, seed=3)
    assert len(reads) == 1
    order = np.random.default_rng(3).permutation(40)  # the first 10 are held out
    scaled = (images / np.float32(255)).astype(np.float32)
    np.testing.assert_array_equal(validation.take(), scaled[order[:10]])
    np.testing.assert_array_equal(train.take(), scaled[order[10:]])
    _, other = data.open_training_images(str(tmp_path / "set.npz"), 0.25, seed=4)
    assert not np.array_equal(other.take(), validation.take())


def test_the_validation_hold_out_follows_the_file_paths_and_never_moves(tmp_path, rng):
    for index in range(40):
        save(str(tmp_path / "a" / f"{index:02d}.png"), colours(rng, 4, 4))
    train, validation = data.open_training_images(str(tmp_path / "a"), 0.25)
    assert train.count + validation.count == 40 and 4 <= validation.count <= 18
    assert not set(train.source.paths) & set(validation.source.paths)
    os.rename(tmp_path / "a", tmp_path / "moved")
    _, moved = data.open_training_images(str(tmp_path / "moved"), 0.25, seed=9)
    assert [os.path.basename(path) for path in moved.source.paths] == [
        os.path.basename(path) for path in validation.source.paths]


def test_streamed_batches_shuffle_every_epoch_reproducibly_and_see_every_image_once(tmp_path):
    for index in range(24):
        save(str(tmp_path / "n" / f"{index:02d}.png"), np.full((2, 2), index * 10, np.uint8))
    for cache in ("none", "memory", str(tmp_path / "cache")):
        images = data.open_images(str(tmp_path / "n"), cache=cache)
        dataset = images.batches(5, shuffle=True, flatten=False, seed=3)
        first, second = epoch(dataset)[:, 0, 0, 0], epoch(dataset)[:, 0, 0, 0]
        expected = np.arange(24) * 10 / 255.0
        np.testing.assert_allclose(np.sort(first), expected, rtol=1e-6)
        np.testing.assert_allclose(np.sort(second), expected, rtol=1e-6)
        assert not np.array_equal(first, second), cache
        assert not dataset.options().autotune.enabled, "deleting an autotuned iterator can stall an epoch's start"
        again = data.open_images(str(tmp_path / "n"), cache=cache).batches(5, shuffle=True, flatten=False, seed=3)
        np.testing.assert_array_equal(epoch(again)[:, 0, 0, 0], first)
    assert os.listdir(tmp_path / "cache"), "--cache DIR writes its cache files there"
    in_order = data.open_images(str(tmp_path / "n")).batches(5, shuffle=False, flatten=True, drop_remainder=True)
    assert [batch.shape for batch in in_order] == [(5, 4)] * 4


def test_a_cache_folder_left_by_a_killed_run_is_reused_and_one_in_use_is_refused(tmp_path):
    for index in range(6):
        save(str(tmp_path / "n" / f"{index}.png"), np.full((2, 2), index * 10, np.uint8))
    # A run that reads the set through a cache folder and dies without cleaning up (os._exit skips atexit).
    killed = ("import os, sys; from tfvae import data; images = data.open_images(sys.argv[1], cache=sys.argv[2]); "
              "images.batches(2); print(images.cache); os._exit(0)")
    folder = subprocess.run([sys.executable, "-c", killed, str(tmp_path / "n"), str(tmp_path / "cache")],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert os.listdir(folder) == ["lock"], "the dead run's lock is left behind"
    # What tf.data leaves when its caching iterator is killed (the names a SIGKILLed tfvae train left).
    open(os.path.join(folder, "images_0.lockfile"), "w").write("Created at: 1795531666")
    open(os.path.join(folder, "images_0.data-00000-of-00001.tempstate663340257634699152"), "w").write("partial")
    images = data.open_images(str(tmp_path / "n"), cache=str(tmp_path / "cache"))
    assert images.cache == folder
    assert len(epoch(images.batches(2, flatten=False))) == 6
    assert sorted(os.listdir(folder)) == ["images.data-00000-of-00001", "images.index", "lock"], "leftovers removed"
    assert json.loads(open(os.path.join(folder, "lock")).read())["pid"] == os.getpid()
    busy = tmp_path / "cache" / "busy"
    busy.mkdir()
    (busy / "lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    with pytest.raises(data.DataError, match="image cache .*busy is in use by another run.*another --cache folder"):
        data.images._held_cache_files(str(busy))


def test_cache_auto_keeps_small_sets_in_memory_only():
    assert data.images._resolve_cache("auto", 1000, (64, 64, 3), "x") == "memory"
    assert data.images._resolve_cache("auto", 100_000, (64, 64, 3), "x") is None
    assert data.images._resolve_cache("auto", None, (64, 64, 3), "x") is None


def test_folders_without_images_or_with_several_sizes_or_bad_files_are_named(tmp_path, rng):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="empty holds no images.*nothing"):
        data.open_images(str(tmp_path / "empty"))
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    with pytest.raises(data.DataError, match="holds no images.*1 other files"):
        data.open_images(str(tmp_path / "text"))
    save(str(tmp_path / "sizes" / "a.png"), colours(rng, 4, 4))
    save(str(tmp_path / "sizes" / "b.png"), colours(rng, 6, 4))
    with pytest.raises(data.DataError, match="b.png is 6x4 but the first image is 4x4: give --image-size"):
        data.open_images(str(tmp_path / "sizes")).take()
    save(str(tmp_path / "bad" / "a.png"), colours(rng, 4, 4))
    save(str(tmp_path / "bad" / "c.jpg"), colours(rng, 4, 4))
    (tmp_path / "bad" / "b.png").write_bytes((tmp_path / "sizes" / "b.png").read_bytes()[:40])  # truncated
    (tmp_path / "bad" / "d.gif").write_bytes(b"")
    with pytest.raises(data.DataError, match="bad/b.png cannot be decoded.*\\(1 more: .*bad/d.gif\\).*--skip-bad"):
        data.open_images(str(tmp_path / "bad")).take()
    skipping = data.open_images(str(tmp_path / "bad"), skip_bad_images=True, cache="none")
    assert skipping.skipped == set(), "nothing skipped before reading"
    batches = skipping.batches(2, flatten=False)
    assert len(epoch(batches)) == 2 and skipping.bad_images.skipped_count == 2
    assert len(epoch(batches)) == 2 and skipping.bad_images.skipped_count == 4, "counted in every epoch"
    assert skipping.skipped == {str(tmp_path / "bad" / "b.png"), str(tmp_path / "bad" / "d.gif")}


def test_a_bad_image_last_in_an_epoch_is_found(tmp_path, rng):
    for name in ("a.png", "b.png"):
        save(str(tmp_path / name), colours(rng, 4, 4))
    (tmp_path / "c.png").write_bytes(b"not a png")
    images = data.open_images(str(tmp_path))
    with pytest.raises(data.DataError, match="c.png cannot be decoded.*image\\. Remove"):
        with data.raising_data_errors(images):  # names the file (the op error cannot: see BadImages)
            epoch(images.batches(3, shuffle=False))
    skipping = data.open_images(str(tmp_path), skip_bad_images=True)
    assert len(epoch(skipping.batches(3, shuffle=False))) == 2 and skipping.bad_images.skipped_count == 1


def test_bad_records_in_tfrecords_stop_with_their_file_and_index_or_are_skipped(tmp_path):
    good = tf.io.encode_png(np.zeros((2, 2, 1), np.uint8)).numpy()
    write_tfrecords(tmp_path / "part.tfrecord", [good, b"\x89PNG broken", good, b""])
    with pytest.raises(data.DataError, match="part.tfrecord#1 cannot be decoded.*1 more: part.tfrecord#3"):
        data.open_images(str(tmp_path / "part.tfrecord")).take()
    skipping = data.open_images(str(tmp_path / "part.tfrecord"), skip_bad_images=True)
    assert epoch(skipping.batches(2, flatten=False)).shape == (2, 2, 2, 1)
    assert skipping.skipped == {"part.tfrecord#1", "part.tfrecord#3"}


def test_image_options_are_checked():
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        data.parse_image_size("64x")
    assert data.parse_image_size("64X48") == (64, 48) and data.parse_image_size(32) == (32, 32)
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        data.open_images("frey_face", channels=2)


# ---- TFRecords ----

def write_tfrecords(path, encoded_images, key="image"):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for encoded in encoded_images:
            feature = {key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
                       "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def test_tfrecord_shards_stream_their_encoded_images(tmp_path):
    values = np.arange(12, dtype=np.uint8) * 20
    encoded = [tf.io.encode_png(np.full((3, 3, 1), value, np.uint8)).numpy() for value in values]
    shards = tmp_path / "shards"
    shards.mkdir()
    write_tfrecords(shards / "data.tfrecord-00000-of-00002", encoded[:6])
    write_tfrecords(shards / "data.tfrecord-00001-of-00002", encoded[6:])
    for source in (str(shards), str(shards / "*.tfrecord-*"), sorted(str(path) for path in shards.iterdir())):
        images = data.open_images(source)
        assert images.image_shape == (3, 3, 1)
        np.testing.assert_allclose(np.sort(images.take()[:, 0, 0, 0]), values / 255.0, rtol=1e-6)  # interleaved
    train, validation = data.open_training_images(str(shards), 0.3, image_size=2, channels=3)
    seen = np.concatenate([epoch(part.batches(4, shuffle=False, flatten=False)) for part in (train, validation)])
    assert seen.shape == (12, 2, 2, 3)
    np.testing.assert_allclose(np.sort(seen[:, 0, 0, 0]), values / 255.0, rtol=1e-6)
    assert 0 < len(validation.take()) < 12
    np.testing.assert_array_equal(validation.take(), data.open_training_images(str(shards), 0.3, image_size=2,
                                                                               channels=3)[1].take())


def test_a_tfrecord_without_the_image_key_lists_its_keys(tmp_path):
    write_tfrecords(tmp_path / "x.tfrecord", [tf.io.encode_png(np.zeros((2, 2, 1), np.uint8)).numpy()], key="png")
    with pytest.raises(data.DataError, match="x.tfrecord.*no feature 'image'.*\\['label', 'png'\\].*--image-key"):
        data.open_images(str(tmp_path / "x.tfrecord"))
    assert data.open_images(str(tmp_path / "x.tfrecord"), image_key="png").take().shape == (1, 2, 2, 1)


# ---- tfds sets ----

def test_any_tfds_image_set_streams_in_colour(tmp_path):
    with tfds.testing.mock_data(num_examples=10, data_dir=str(tmp_path)):
        train, validation = data.open_training_images("cifar10", 0.2, data_dir=str(tmp_path))
        assert train.image_shape == (32, 32, 3) and train.source.split == "train[:80%]"
        assert validation.source.split == "train[80%:]"
        batches = epoch(train.batches(4, flatten=False, seed=1))
        small = data.open_images("cifar10", "test", image_size=8, channels=1, data_dir=str(tmp_path)).take(3)
    assert batches.shape == (10, 32, 32, 3) and batches.max() <= 1.0 and batches.max() > 0.5
    assert not np.allclose(batches[..., 0], batches[..., 1]), "colour images keep their channels"
    assert small.shape == (3, 8, 8, 1)


def test_unknown_names_and_unprepared_tfds_sets_are_reported(tmp_path):
    with pytest.raises(data.DataError, match="No data set or file named 'no_such_set'"):
        data.open_images("no_such_set")
    for path in ("./no_such_folder", str(tmp_path / "missing" / "x.npz"), "~/no_such_folder/"):
        with pytest.raises(data.DataError, match=f"^{re.escape(path)}: no such file or folder\\.$"):
            data.open_images(path)
    with pytest.raises(data.DataError, match="'cifar10' is not prepared.*downloads are off"):
        data.open_images("cifar10", data_dir=str(tmp_path))


def test_tfvae_trains_on_tfrecords_whose_count_is_unknown(tmp_path):
    rng = np.random.default_rng(0)
    encoded = [tf.io.encode_png(rng.integers(0, 256, (8, 8, 1), dtype=np.uint8)).numpy() for _ in range(20)]
    write_tfrecords(tmp_path / "faces.tfrecord", encoded)
    config = training.make_config(dataset=str(tmp_path / "faces.tfrecord"), image_size=8, model="conv",
                                  latent_size=2, epochs=2, batch_size=8, validation_split=0, jit_compile="off",
                                  steps_per_execution=1, verbose=0, output_dir=str(tmp_path / "run"),
                                  export_root=str(tmp_path / "exports"))
    assert config.image_size == "8x8"  # spelled as config.json and --image-size take it back
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, history, export_path = training.train(config)
    assert not [warning for warning in caught if "ran out of data" in str(warning.message)], "nothing was missing"
    assert len(history.history["elbo"]) == 2 and np.isfinite(history.history["elbo"]).all()
    assert model.data_shape == (8, 8, 1) and os.path.exists(os.path.join(export_path, "saved_model.pb"))
    assert training.load_config(str(tmp_path / "run" / "config.json")) == config
