"""Two workers on 127.0.0.1 under MultiWorkerMirroredStrategy each read and decode their own part of a streamed image
set, through `strategy.distribute_datasets_from_function`, as `tfvae train --strategy multiworker` does."""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_workers
from PIL import Image

COUNT = 24
TFVAE = os.path.join(os.path.dirname(sys.executable), "tfvae")

# Each worker iterates one epoch of the folder's and the TFRecords' batches for its input pipeline, and saves the
# image ids it saw and how many bad images it decoded.
WORKER = """
import json, os, sys
import numpy as np
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
from tfvae import data
task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
seen = {}
for name in ("folder", "tfrecords"):
    images = data.open_images(os.path.join(sys.argv[1], name), cache="none", skip_bad_images=True)
    ids = []
    batches = strategy.distribute_datasets_from_function(
        lambda context: images.batches(8, flatten=False, seed=0, input_context=context))
    for batch in batches:
        for local in strategy.experimental_local_results(batch):
            ids += np.rint(local.numpy()[:, 0, 0, 0] * 255 / 10).astype(int).tolist()
    seen[name] = {"ids": ids, "bad": images.bad_images.skipped_count}
with open(os.path.join(sys.argv[1], f"worker{task}.json"), "w") as file:
    json.dump(seen, file)
"""


@pytest.fixture(scope="module")
def image_sets(tmp_path_factory):
    """A folder of COUNT 2x2 PNGs whose value is 10 x their id, plus one corrupt file; the same in 4 TFRecord files."""
    root = tmp_path_factory.mktemp("sets")
    (root / "folder").mkdir()
    (root / "tfrecords").mkdir()
    encoded = []
    for index in range(COUNT):
        Image.fromarray(np.full((2, 2), index * 10, np.uint8)).save(root / "folder" / f"{index:02d}.png")
        encoded.append((root / "folder" / f"{index:02d}.png").read_bytes())
    (root / "folder" / "corrupt.png").write_bytes(b"\x89PNG not really")
    encoded.append(b"\x89PNG not really")
    for shard in range(4):
        with tf.io.TFRecordWriter(str(root / "tfrecords" / f"part.tfrecord-{shard}")) as writer:
            for image in encoded[shard::4]:
                feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))}
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return root


def test_each_worker_decodes_only_its_part_and_every_example_is_seen_once(image_sets):
    run_workers([sys.executable, "-c", WORKER, str(image_sets)], timeout=600)
    seen = [json.loads((image_sets / f"worker{index}.json").read_text()) for index in range(2)]
    for name in ("folder", "tfrecords"):
        first, second = seen[0][name]["ids"], seen[1][name]["ids"]
        assert sorted(first + second) == list(range(COUNT)), (name, first, second)
        assert min(len(first), len(second)) >= COUNT // 2 - 1, (name, "each worker reads about half of 25 files")
        # The corrupt image is decoded (and skipped) by the worker whose part it is in, and by no other.
        assert sorted([seen[0][name]["bad"], seen[1][name]["bad"]]) == [0, 1], name


def test_tfvae_train_on_a_folder_with_two_workers(image_sets, tmp_path):
    command = [TFVAE, "train", "--dataset", str(image_sets / "folder"), "--strategy", "multiworker", "--model", "mlp",
               "--hidden-units", "8", "--latent-size", "2", "--batch-size", "4", "--epochs", "2", "--skip-bad-images",
               "--cache", str(tmp_path / "cache"), "--validation-split", "0.25", "--output-dir", str(tmp_path / "run"),
               "--export-root", str(tmp_path / "exports"), "--model-name", "folder", "--quiet"]
    chief, other = run_workers(command, timeout=600)
    assert "SavedModel:" in chief and "SavedModel:" not in other
    # Each worker reports the bad images it met: the corrupt file is in one worker's part.
    skipped = f"Skipped 1 bad image(s) that could not be decoded: {image_sets / 'folder' / 'corrupt.png'}."
    assert (skipped in chief) != (skipped in other), (chief, other)
    parts = sorted(name.rsplit("-", 1)[-1] for name in os.listdir(tmp_path / "cache"))
    assert parts == ["part0of2", "part0of2", "part1of2", "part1of2"], "each worker caches its part of both splits"
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "val_elbo" in history[0], history
