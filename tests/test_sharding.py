"""Two workers on 127.0.0.1 under MultiWorkerMirroredStrategy each read their own part of a streamed image set."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from helpers import free_ports
from PIL import Image

COUNT = 24

# Each worker iterates one epoch of the distributed folder and TFRecord batches and saves the image ids it saw.
WORKER = """
import json, os, sys
import numpy as np
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
from tfvae import data
task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
seen = {}
for name in ("folder", "tfrecords"):
    dataset = data.open_images(os.path.join(sys.argv[1], name), cache="none").batches(4, flatten=False, seed=0)
    ids = []
    for batch in strategy.experimental_distribute_dataset(dataset):
        for local in strategy.experimental_local_results(batch):
            ids += np.rint(local.numpy()[:, 0, 0, 0] * 255 / 10).astype(int).tolist()
    seen[name] = ids
with open(os.path.join(sys.argv[1], f"worker{task}.json"), "w") as file:
    json.dump(seen, file)
"""


def test_each_example_is_seen_once_per_epoch_across_two_workers(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "tfrecords").mkdir()
    encoded = []
    for index in range(COUNT):
        Image.fromarray(np.full((2, 2), index * 10, np.uint8)).save(tmp_path / "folder" / f"{index:02d}.png")
        encoded.append((tmp_path / "folder" / f"{index:02d}.png").read_bytes())
    for shard in range(4):
        with tf.io.TFRecordWriter(str(tmp_path / "tfrecords" / f"part.tfrecord-{shard}")) as writer:
            for image in encoded[shard::4]:
                feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))}
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}
            workers.append(subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path)], env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for worker in workers:
            _, stderr = worker.communicate(timeout=600)
            assert worker.returncode == 0, stderr[-4000:]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    seen = [json.loads((tmp_path / f"worker{index}.json").read_text()) for index in range(2)]
    for name in ("folder", "tfrecords"):
        first, second = seen[0][name], seen[1][name]
        assert sorted(first + second) == list(range(COUNT)), (name, first, second)
        assert first and second, "each worker reads a part"
        # Sharded by file (not by element after decoding): each worker decodes every other file only.
        assert len({index % 2 for index in first}) == len({index % 2 for index in second}) == 1, name
