"""Video clips for video autoencoders (`AutoencoderKLCogVideoX`): `open_videos` streams clips `[T, H, W, C]`.

A video set is a folder of video files (MP4, WebM, MKV, AVI through PyAV, the `tfvae[video]` extra; GIF through
TensorFlow) or TFRecord files of videos (`tfvae.data.video_records`). Each video is decoded one frame at a time in a
Python generator and cut into clips of `T = 1 + 4k` frames (CogVideoX's causal VAE compresses time 4x and keeps the
first frame), `frame_stride` frames apart; the clips are then resized and centre-cropped as images are
(`pipeline.resize_and_crop`) and scaled to [0, 1] in a parallel `tf.data` map:

    files (in order, or shuffled every epoch) -> frames (PyAV / decode_gif / TFRecord) -> clips of T frames
        -> bad videos: stop or skip -> channels -> resize and centre-crop -> float32 in [0, 1]

Only the clip being cut (and those the `tf.data` buffers hold) is in memory, never a whole set or, except for GIFs,
a whole video.
"""

import itertools
import os

import numpy as np
import tensorflow as tf

from tfvae.data import sources
from tfvae.data.errors import DataError
from tfvae.data.images import raising_data_errors
from tfvae.data.pipeline import ERROR_MARKER, parse_image_size, resize_and_crop, stream, to_channels
from tfvae.data.video_decoding import VIDEO_SUFFIXES, UndecodableVideo, import_pyav, needs_pyav, video_frames
from tfvae.data.video_records import video_records

TEMPORAL_COMPRESSION = 4  # CogVideoX's VAE: a clip of 1 + 4k frames has 1 + k latent frames


def open_videos(source, *, frames=17, frame_stride=1, image_size=None, channels=3, skip_bad_videos=False):
    """Clips of `frames` frames from the videos of `source`, as float32 in [0, 1].

    Each video gives its frames `0, s, 2s, ...` (`s = frame_stride`) grouped into consecutive clips of `frames`
    (see `cut_clips`): a video of `N` frames gives `floor(ceil(N / s) / frames)` clips; the frames left over at its
    end, or a video shorter than one clip, give none.

    Args:
        source: a folder of video files (MP4, WebM, MKV, AVI, GIF; searched recursively, hidden ones skipped), one
            video file, or TFRecord files of videos (a glob, a folder of `*.tfrecord*` shards, a file, or a list;
            layout in `tfvae.data.video_records`, written by `write_video_records`).
        frames: frames per clip, `1 + 4k` (1, 5, 9, 13, 17, ...).
        frame_stride: take every `frame_stride`-th frame of a video (1: every frame).
        image_size: `(height, width)`, `"HxW"` or an int for squares: resize the short side of every frame to fit and
            crop the centre, as `open_images` does. None keeps the frames' size, which must then be the same for
            all videos.
        channels: 3 (RGB) or 1 (grayscale, ITU-R 601 weights).
        skip_bad_videos: skip videos that cannot be decoded (named in `skipped`) instead of stopping.

    Returns:
        A `VideoClips` set: `clips()` and `batches(...)` give `tf.data.Dataset`s of clips `clip_shape`.

    Raises:
        ValueError: for `frames` not `1 + 4k`, a `frame_stride` below 1, or `channels` not 1 or 3.
        DataError: when `source` holds no videos, PyAV is needed but not installed, or no clip can be read.

    Example:

    >>> videos = open_videos("clips/", frames=17, frame_stride=2, image_size=64)
    >>> videos.clip_shape
    (17, 64, 64, 3)
    >>> model.fit(videos.batches(8), epochs=10)
    """
    check_clip_length(frames)
    if not isinstance(frame_stride, int) or frame_stride < 1:
        raise ValueError(f"frame_stride must be a whole number of at least 1, got {frame_stride!r}.")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}.")
    name, files, read = _find_videos(source)
    return VideoClips(name, files, read, frames, frame_stride, parse_image_size(image_size), channels,
                      skip_bad_videos)


def check_clip_length(frames):
    """Raises `ValueError` unless `frames` is `1 + 4k` for a whole `k >= 0`, the clip lengths CogVideoX encodes."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1 or (frames - 1) % TEMPORAL_COMPRESSION:
        raise ValueError(f"frames must be 1 + {TEMPORAL_COMPRESSION}k (1, 5, 9, 13, 17, ...) for a causal video VAE "
                         f"that compresses time {TEMPORAL_COMPRESSION}x, got {frames!r}.")


def cut_clips(frames, length, stride=1):
    """Yields clips `[length, h, w, c]` of the frames `frames[(i * length + j) * stride]`, `j < length`, for clip
    `i = 0, 1, ...`: every `stride`-th frame, grouped into consecutive clips; a last, shorter group is dropped.

    Args:
        frames: an iterable of equally shaped frames `[h, w, c]`, read only as far as the clips need.
        length: frames per clip.
        stride: the distance between two frames of a clip in the source.

    Example:

    >>> [clip[:, 0, 0, 0].tolist() for clip in cut_clips(np.arange(10).reshape(10, 1, 1, 1), 3, stride=2)]
    [[0, 2, 4]]
    """
    clip = []
    for frame in itertools.islice(frames, 0, None, stride):
        clip.append(frame)
        if len(clip) == length:
            yield np.stack(clip)
            clip = []


def resize_clip(clip, size):
    """Resizes and centre-crops every frame of `clip` `[T, h, w, c]` to `size = (height, width)` as
    `pipeline.resize_and_crop` does an image, in one resize: the frames are stacked along the channels."""
    length, height, width, channels = tf.unstack(tf.shape(clip))
    stacked = tf.reshape(tf.transpose(clip, [1, 2, 0, 3]), [height, width, length * channels])
    resized = resize_and_crop(stacked, size)
    return tf.transpose(tf.reshape(resized, [*size, length, channels]), [2, 0, 1, 3])


def list_videos(root):
    """The video files below `root` in sorted order, hidden ones skipped; raises `DataError` when there are none."""
    paths, others = [], 0
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(name for name in names if not name.startswith(".")):
            if name.lower().endswith(VIDEO_SUFFIXES):
                paths.append(os.path.join(folder, name))
            else:
                others += 1
    if not paths:
        found = f"only {others} other files" if others else "nothing"
        raise DataError(f"{root} holds no videos (MP4, WebM, MKV, AVI or GIF files, searched recursively): it holds "
                        f"{found}. Point open_videos at a folder of videos or at TFRecord files of videos.")
    return paths


class VideoClips:
    """Clips cut from videos while they stream: nothing holds the set.

    Args:
        name: names the source in messages.
        files: the video files, or the TFRecord files of videos.
        read: gives the `(key, frames)` of each video in one of `files` (see `video_records`).
        frames: frames per clip, as for `open_videos`.
        frame_stride: as for `open_videos`.
        image_size: `(height, width)`, or None to keep the frames' size.
        channels: 1 or 3, as for `open_videos`.
        skip: skip videos that cannot be decoded instead of stopping.

    Attributes:
        clip_shape: `(frames, height, width, channels)` of every clip.
    """

    def __init__(self, name, files, read, frames, frame_stride, image_size, channels, skip):
        self.name, self.files, self.read = name, files, read
        self.frames, self.frame_stride, self.channels, self.skip = frames, frame_stride, channels, skip
        self.image_size = image_size
        self._skipped = set()
        self._epochs = 0  # epochs drawn so far: each draws the files' order from (shuffle_seed, epoch)
        self._frame_size = None  # while the first clip is read; then its frames' size, which image_size=None needs
        self._frame_size = self._first_clip().shape[1:3]
        self.clip_shape = (frames, *(image_size or self._frame_size), channels)

    @property
    def skipped(self):
        """The keys (files, or `file#record`) of the videos skipped so far because they cannot be decoded."""
        return frozenset(self._skipped)

    def clips(self, shuffle_seed=None):
        """A `tf.data.Dataset` of float32 clips `clip_shape` in [0, 1]: the files in order, or in an order drawn from
        `shuffle_seed` anew every epoch. A bad video stops it with an op error that `raising_data_errors(self)`
        turns into a `DataError` naming it (or, with `skip`, is skipped and named in `skipped`)."""
        uint8_clips = tf.data.Dataset.from_generator(
            lambda: self._reported_clips(shuffle_seed),
            output_signature=tf.TensorSpec([self.frames, None, None, 3], tf.uint8))
        return uint8_clips.map(self._prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def batches(self, batch_size, shuffle=True, seed=0, drop_remainder=False):
        """A prefetching `tf.data.Dataset` of float32 batches `[batch_size, *clip_shape]` for `fit`: with `shuffle`,
        the files in a new order every epoch and the clips through a bounded buffer (see `pipeline.stream`)."""
        return stream(self.clips(seed if shuffle else None), self.clip_shape, batch_size, shuffle, flatten=False,
                      seed=seed, drop_remainder=drop_remainder, shard_policy=tf.data.experimental.AutoShardPolicy.DATA)

    def take(self, count=None):
        """The first `count` clips (all when None) in order, as a float32 array `[count, *clip_shape]`."""
        clips = self.clips()
        if count is not None:
            clips = clips.take(count)
        with raising_data_errors(self):
            batches = [batch.numpy() for batch in clips.batch(64)]
        return np.concatenate(batches) if batches else np.zeros((0, *self.clip_shape), np.float32)

    def _first_clip(self):
        # Bad videos met here are not named in `skipped`: they will be met again while streaming.
        first = next(self._uint8_clips(self.files, set()), None)
        if first is None:
            shortest = (self.frames - 1) * self.frame_stride + 1
            raise DataError(f"{self.name}: no clip of {self.frames} frames could be read: the videos are shorter than "
                            f"{shortest} frames (frames={self.frames}, frame_stride={self.frame_stride}) or bad.")
        return first

    def _reported_clips(self, shuffle_seed):
        """`_uint8_clips` of an epoch, whose `DataError`s carry the pipeline's marker through `tf.data`."""
        files = self.files
        if shuffle_seed is not None:
            files = list(np.random.default_rng((shuffle_seed, self._epochs)).permutation(files))
            self._epochs += 1
        try:
            yield from self._uint8_clips(files, self._skipped)
        except DataError as error:
            raise DataError(ERROR_MARKER + str(error)) from None  # read by raising_data_errors

    def _uint8_clips(self, files, skipped):
        """Yields the uint8 RGB clips of the videos in `files`, adding the bad ones' keys to `skipped` when skipping."""
        for path in files:
            videos = self.read(path)
            while (video := self._next_video(videos, skipped)) is not None:
                key, frames = video
                try:
                    yield from self._same_sized(key, cut_clips(frames, self.frames, self.frame_stride))
                except UndecodableVideo as error:
                    self._skip_or_stop(error, skipped)

    def _next_video(self, videos, skipped):
        try:
            return next(videos, None)
        except UndecodableVideo as error:  # the file cannot be read on
            self._skip_or_stop(error, skipped)
            return None

    def _skip_or_stop(self, error, skipped):
        if not self.skip:
            raise error
        skipped.add(error.key)

    def _same_sized(self, key, clips):
        for clip in clips:
            if self.image_size is None and self._frame_size is not None and clip.shape[1:3] != self._frame_size:
                raise DataError(f"{key} is {clip.shape[1]}x{clip.shape[2]} but the first video is "
                                f"{self._frame_size[0]}x{self._frame_size[1]}: give image_size to resize them all "
                                "to one size.")
            yield clip

    def _prepare(self, clip):
        length, height, width = tf.unstack(tf.shape(clip)[:3])
        pixels = tf.reshape(tf.cast(clip, tf.float32) / 255.0, [-1, width, 3])  # frames stacked vertically
        clip = tf.reshape(to_channels(pixels, self.channels), [length, height, width, self.channels])
        if self.image_size is not None:
            clip = resize_clip(clip, self.image_size)
        return tf.ensure_shape(clip, self.clip_shape)


def _find_videos(source):
    """`(name, files, read)` of `source`: TFRecord files of videos, a folder of video files, or one video file."""
    tfrecords = sources.find_tfrecords(source)
    if tfrecords:
        name = tfrecords[0] if len(tfrecords) == 1 else f"{len(tfrecords)} TFRecord files"
        return name, tfrecords, video_records
    if os.path.isdir(source):
        files = list_videos(source)
    elif os.path.isfile(source) and source.lower().endswith(VIDEO_SUFFIXES):
        files = [source]
    else:
        raise DataError(f"{source}: no such folder or video file (MP4, WebM, MKV, AVI, GIF) and no TFRecord files.")
    first_for_pyav = next((path for path in files if needs_pyav(path)), None)
    if first_for_pyav is not None:
        import_pyav(first_for_pyav)
    return source, files, _one_video


def _one_video(path):
    return iter([(path, video_frames(path))])
