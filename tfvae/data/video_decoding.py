"""The frames of one video file: MP4, WebM, MKV and AVI through PyAV (the `tfvae[video]` extra), GIF through
TensorFlow's `tf.io.decode_gif` (no extra needed).

`video_frames(path)` yields a video's frames one at a time, uint8 RGB `[height, width, 3]`, so that a long video is
never held in memory whole (a GIF is, as `tf.io.decode_gif` decodes all its frames at once).
"""

import tensorflow as tf

from tfvae.data.errors import DataError

PYAV_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi")
GIF_SUFFIX = ".gif"
VIDEO_SUFFIXES = (*PYAV_SUFFIXES, GIF_SUFFIX)
INSTALL_PYAV = 'pip install "tfvae[video]"'


class UndecodableVideo(DataError):
    """A video that cannot be decoded: corrupt, truncated, or not a video.

    Args:
        key: names the video (a file, or `file#record`).
        reason: what the decoder said (a message or an error; its first line is kept).
    """

    def __init__(self, key, reason):
        self.key = key
        lines = str(reason).strip().splitlines()
        reason = lines[0] if lines else type(reason).__name__
        super().__init__(f"{key} cannot be decoded as a video ({reason}): it is corrupt, truncated or not a video. "
                         "Remove such files, or skip them with skip_bad_videos=True.")


def needs_pyav(path):
    """Whether the video file at `path` is decoded by PyAV (MP4, WebM, MKV, AVI) rather than by TensorFlow (GIF)."""
    return path.lower().endswith(PYAV_SUFFIXES)


def import_pyav(path):
    """The `av` module (PyAV); raises `DataError`, naming `path` and the extra to install, when it is missing."""
    try:
        import av
    except ImportError:
        raise DataError(f"{path}: MP4, WebM, MKV and AVI videos are decoded by PyAV, which is not installed: "
                        f"{INSTALL_PYAV} (GIFs need nothing more).") from None
    return av


def video_frames(path):
    """Yields the frames of the video file at `path`, in order, as uint8 RGB arrays `[height, width, 3]`.

    Raises:
        UndecodableVideo: when the file cannot be read or decoded (raised when the bad part is reached).
    """
    if needs_pyav(path):
        yield from _pyav_frames(path)
    else:
        yield from _gif_frames(path)


def _pyav_frames(path):
    av = import_pyav(path)
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise UndecodableVideo(path, "no video stream")
            container.streams.video[0].thread_type = "AUTO"  # FFmpeg decodes on several threads
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, OSError) as error:
        raise UndecodableVideo(path, error) from error


def _gif_frames(path):
    try:
        frames = tf.io.decode_gif(tf.io.read_file(path)).numpy()
    except tf.errors.OpError as error:
        raise UndecodableVideo(path, error.message) from error
    yield from frames

