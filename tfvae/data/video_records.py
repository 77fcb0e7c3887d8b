"""TFRecord files of videos: one `tf.train.Example` per video, its frames encoded as PNG or JPEG images.

The record layout:

    features {
      feature { key: "frames"  value { bytes_list { value: [<frame 0>, <frame 1>, ...] } } }
    }

Each value of `"frames"` is one frame, in order, encoded as an image that `tf.io.decode_image` reads (PNG, JPEG;
gray or RGB, 8 bits). Other features are allowed and ignored. `write_video_records` writes such files;
`video_records` reads them back one video at a time, each frame decoded only when it is reached.
"""

import os

import numpy as np
import tensorflow as tf

from tfvae.data.errors import DataError
from tfvae.data.video_decoding import UndecodableVideo

FRAMES_KEY = "frames"
_ENCODERS = {"png": tf.io.encode_png, "jpeg": tf.io.encode_jpeg}


def write_video_records(path, videos, image_format="png"):
    """Writes `videos` to the TFRecord file `path`, one `tf.train.Example` per video (see the module's layout).

    Args:
        path: the TFRecord file to write.
        videos: an iterable of uint8 videos `[frames, height, width, channels]` (1 or 3 channels).
        image_format: `"png"` (lossless) or `"jpeg"`, the encoding of each frame.

    Returns:
        The number of videos written.

    Example:

    >>> videos = np.zeros((2, 5, 16, 16, 3), np.uint8)
    >>> write_video_records("videos.tfrecord", videos)
    2
    """
    if image_format not in _ENCODERS:
        raise ValueError(f"image_format must be one of {sorted(_ENCODERS)}, got {image_format!r}.")
    encode = _ENCODERS[image_format]
    count = 0
    with tf.io.TFRecordWriter(os.fspath(path)) as writer:
        for video in videos:
            frames = [encode(frame).numpy() for frame in np.asarray(video, np.uint8)]
            feature = {FRAMES_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=frames))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
            count += 1
    return count


def video_records(path):
    """Yields `(key, frames)` for each video in the TFRecord file `path`: `key` is `"<file name>#<record index>"`,
    `frames` an iterator of uint8 RGB frames `[height, width, 3]` decoded one at a time.

    Raises:
        UndecodableVideo: for a file that cannot be read on (keyed by the file); `frames` raises it for a record that
            is not an Example or a frame that cannot be decoded (keyed by the record).
        DataError: raised by `frames` when a record has no `"frames"` feature.
    """
    name = os.path.basename(path)
    try:
        for index, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
            key = f"{name}#{index}"
            yield key, _record_frames(path, key, record)
    except tf.errors.OpError as error:
        raise UndecodableVideo(path, error.message) from error


def _record_frames(path, key, record):
    """Parses the record, then yields its frames decoded one at a time: a bad record is found when it is read."""
    try:
        features = tf.train.Example.FromString(record).features.feature
    except Exception as error:  # the protobuf decode error has no public class
        raise UndecodableVideo(key, f"not a tf.train.Example: {error}") from error
    if FRAMES_KEY not in features:
        raise DataError(f"{path}: its records have no feature {FRAMES_KEY!r}; they have {sorted(features)}. Write "
                        "video records with tfvae.data.write_video_records.")
    for index, data in enumerate(features[FRAMES_KEY].bytes_list.value):
        try:
            yield tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
        except tf.errors.OpError as error:
            raise UndecodableVideo(key, f"frame {index} is not a PNG or JPEG image") from error
