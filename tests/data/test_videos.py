"""Video clips from folders of video files and TFRecords of frames: clip boundaries, stride, resizing, bad videos."""

import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import CODECS, write_gif, write_video

from tfvae import data
from tfvae.data import videos

av = pytest.importorskip("av")

STEP = 10  # the gray level between two numbered frames


def numbered_frames(count, first=0, height=16, width=16):
    """`count` uniform RGB frames numbered from `first`: frame `n` is gray `STEP * n`, so that a decoded pixel tells
    which frame it came from."""
    return np.stack([np.full((height, width, 3), STEP * number, np.uint8) for number in range(first, first + count)])


def frame_numbers(clips):
    """The number of the source frame of each frame of `clips` (float32 `[n, T, h, w, c]`), from its mean gray."""
    return np.rint(clips.mean(axis=(2, 3, 4)) * 255 / STEP).astype(int).tolist()


def unit(pixels):
    """uint8 `pixels` as the float32 values in [0, 1] that a clip holds."""
    return np.asarray(pixels).astype(np.float32) / np.float32(255)


# ---- clip lengths and boundaries ----

@pytest.mark.parametrize("frames", [0, 2, 4, 16, 18, 5.0, True])
def test_clip_lengths_other_than_one_plus_four_k_are_refused(tmp_path, frames):
    with pytest.raises(ValueError, match=r"frames must be 1 \+ 4k"):
        data.open_videos(str(tmp_path), frames=frames)


@pytest.mark.parametrize("count, length, stride", [(17, 5, 1), (10, 5, 2), (11, 5, 2), (9, 1, 3), (4, 5, 1)])
def test_clips_hold_every_strideth_frame_in_consecutive_groups(count, length, stride):
    clips = list(videos.cut_clips(iter(np.arange(count).reshape(count, 1, 1, 1)), length, stride))
    sampled = list(range(0, count, stride))
    expected = [sampled[start:start + length] for start in range(0, len(sampled) - length + 1, length)]
    assert len(clips) == (-(-count // stride)) // length
    assert [clip.ravel().tolist() for clip in clips] == expected


def test_gif_clips_come_in_file_order_with_the_stride(tmp_path):
    write_gif(tmp_path / "a.gif", numbered_frames(11))  # frames 0, 2, ..., 10: one clip and one frame left over
    write_gif(tmp_path / "b.gif", numbered_frames(8, first=11))  # frames 11, 13, 15, 17: shorter than a clip
    write_gif(tmp_path / "c.gif", numbered_frames(20, first=1))  # frames 1, 3, ..., 19: two clips
    clips = data.open_videos(str(tmp_path), frames=5, frame_stride=2).take()
    assert clips.dtype == np.float32 and clips.shape == (3, 5, 16, 16, 3)
    assert frame_numbers(clips) == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9], [11, 13, 15, 17, 19]]
    np.testing.assert_array_equal(clips[0, :, 0, 0, 0], unit(np.arange(0, 10, 2) * STEP))


@pytest.mark.parametrize("suffix", sorted(CODECS))
def test_pyav_videos_are_decoded_into_clips(tmp_path, suffix):
    write_video(tmp_path / f"video{suffix}", numbered_frames(11, height=16, width=24))
    clips = data.open_videos(str(tmp_path), frames=5).take()
    assert clips.shape == (2, 5, 16, 24, 3)
    assert 0.0 <= clips.min() and clips.max() <= 1.0
    assert frame_numbers(clips) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_tfrecord_videos_are_read_back_exactly(tmp_path, rng):
    recorded = [rng.integers(0, 256, (count, 16, 20, 3), dtype=np.uint8) for count in (7, 10)]
    assert data.write_video_records(tmp_path / "videos.tfrecord", recorded) == 2
    clips = data.open_videos(str(tmp_path / "videos.tfrecord"), frames=5).take()
    np.testing.assert_array_equal(clips, unit([recorded[0][:5], recorded[1][:5], recorded[1][5:]]))


def test_a_single_frame_clip_is_an_image_per_frame(tmp_path):
    write_gif(tmp_path / "a.gif", numbered_frames(3))
    assert frame_numbers(data.open_videos(str(tmp_path), frames=1).take()) == [[0], [1], [2]]


# ---- resizing, cropping and channels: as images ----

@pytest.mark.parametrize("image_size, shape", [(8, (8, 8)), ("6x10", (6, 10))])
def test_frames_are_resized_and_cropped_as_images_are(tmp_path, rng, image_size, shape):
    video = rng.integers(0, 256, (5, 16, 32, 3), dtype=np.uint8)
    data.write_video_records(tmp_path / "videos.tfrecord", [video])
    clips = data.open_videos(str(tmp_path / "videos.tfrecord"), frames=5, image_size=image_size).take()
    assert clips.shape == (1, 5, *shape, 3)
    expected = [data.resize_and_crop(unit(frame), shape) for frame in video]
    np.testing.assert_allclose(clips[0], np.stack(expected), atol=1e-5)


def test_gray_clips_use_the_images_conversion(tmp_path, rng):
    video = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    data.write_video_records(tmp_path / "videos.tfrecord", [video])
    clips = data.open_videos(str(tmp_path / "videos.tfrecord"), frames=5, channels=1).take()
    np.testing.assert_allclose(clips[0], tf.image.rgb_to_grayscale(unit(video)).numpy(), atol=1e-6)


def test_videos_of_different_sizes_need_an_image_size(tmp_path):
    write_gif(tmp_path / "a.gif", numbered_frames(5))
    write_gif(tmp_path / "b.gif", numbered_frames(5, height=16, width=24))
    with pytest.raises(data.DataError, match=r"b\.gif is 16x24 but the first video is 16x16: give image_size"):
        data.open_videos(str(tmp_path), frames=5).take()
    assert data.open_videos(str(tmp_path), frames=5, image_size=8).take().shape == (2, 5, 8, 8, 3)


# ---- batches ----

def test_batches_shuffle_the_clips_anew_every_epoch(tmp_path):
    for index in range(6):
        write_gif(tmp_path / f"{index}.gif", numbered_frames(1, first=index))
    clips = data.open_videos(str(tmp_path), frames=1)
    assert clips.clip_shape == (1, 16, 16, 3)
    in_order = np.concatenate(list(clips.batches(4, shuffle=False)))
    assert frame_numbers(in_order) == [[index] for index in range(6)]
    batches = clips.batches(4, seed=3)
    epochs = [frame_numbers(np.concatenate(list(batches))) for _ in range(2)]
    assert all(sorted(epoch) == [[index] for index in range(6)] for epoch in epochs)
    assert epochs[0] != epochs[1]


def test_the_files_come_in_a_new_seeded_order_every_epoch(tmp_path):
    for index in range(6):
        write_gif(tmp_path / f"{index}.gif", numbered_frames(1, first=index))
    videos = data.open_videos(str(tmp_path), frames=1)
    clips = videos.clips(shuffle_seed=5)
    epochs = [frame_numbers(np.stack(list(clips.as_numpy_iterator()))) for _ in range(2)]
    assert all(sorted(epoch) == [[index] for index in range(6)] for epoch in epochs)
    assert epochs[0] != epochs[1]
    again = data.open_videos(str(tmp_path), frames=1).clips(shuffle_seed=5)
    assert frame_numbers(np.stack(list(again.as_numpy_iterator()))) == epochs[0]


# ---- bad videos and missing sources ----

def bad_files(folder):
    """A folder holding a good GIF, a truncated MP4 and a file that is no video, the bad ones sorted last."""
    write_gif(folder / "a.gif", numbered_frames(5))
    write_video(folder / "b.mp4", numbered_frames(5))
    with open(folder / "b.mp4", "rb") as file:
        truncated = file.read()[:300]
    with open(folder / "b.mp4", "wb") as file:
        file.write(truncated)
    with open(folder / "c.webm", "wb") as file:
        file.write(b"not a video" * 10)


def test_a_bad_video_is_named(tmp_path):
    bad_files(tmp_path)
    with pytest.raises(data.DataError, match=r"b\.mp4 cannot be decoded as a video .*skip_bad_videos=True"):
        data.open_videos(str(tmp_path), frames=5).take()


def test_bad_videos_are_skipped_and_named(tmp_path):
    bad_files(tmp_path)
    clips = data.open_videos(str(tmp_path), frames=5, skip_bad_videos=True)
    assert clips.skipped == frozenset()
    assert frame_numbers(clips.take()) == [[0, 1, 2, 3, 4]]
    assert clips.skipped == {str(tmp_path / "b.mp4"), str(tmp_path / "c.webm")}


def test_a_bad_first_video_is_named_when_opening(tmp_path):
    with open(tmp_path / "a.gif", "wb") as file:
        file.write(b"GIF89a and then nothing")
    with pytest.raises(data.DataError, match=r"a\.gif cannot be decoded as a video"):
        data.open_videos(str(tmp_path), frames=5)


def test_a_bad_frame_names_its_record_and_is_skipped(tmp_path, rng):
    recorded = [rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8) for _ in range(3)]
    data.write_video_records(tmp_path / "videos.tfrecord", recorded)
    records = [record.numpy() for record in tf.data.TFRecordDataset(str(tmp_path / "videos.tfrecord"))]
    example = tf.train.Example.FromString(records[1])
    example.features.feature["frames"].bytes_list.value[2] = b"not a PNG"
    with tf.io.TFRecordWriter(str(tmp_path / "videos.tfrecord")) as writer:
        for record in (records[0], example.SerializeToString(), records[2]):
            writer.write(record)
    with pytest.raises(data.DataError, match=r"videos\.tfrecord#1 cannot be decoded as a video \(frame 2 "):
        data.open_videos(str(tmp_path / "videos.tfrecord"), frames=5).take()
    clips = data.open_videos(str(tmp_path / "videos.tfrecord"), frames=5, skip_bad_videos=True)
    np.testing.assert_array_equal(clips.take(), unit([recorded[0], recorded[2]]))
    assert clips.skipped == {"videos.tfrecord#1"}


def test_a_truncated_tfrecord_file_is_named_and_skipped(tmp_path, rng):
    recorded = rng.integers(0, 256, (1, 5, 8, 8, 3), dtype=np.uint8)
    data.write_video_records(tmp_path / "a.tfrecord", recorded)
    data.write_video_records(tmp_path / "b.tfrecord", recorded)
    (tmp_path / "b.tfrecord").write_bytes((tmp_path / "b.tfrecord").read_bytes()[:-20])
    with pytest.raises(data.DataError, match=r"b\.tfrecord cannot be decoded as a video"):
        data.open_videos(str(tmp_path), frames=5).take()
    clips = data.open_videos(str(tmp_path), frames=5, skip_bad_videos=True)
    np.testing.assert_array_equal(clips.take(), unit(recorded))
    assert clips.skipped == {str(tmp_path / "b.tfrecord")}


def test_without_pyav_a_video_folder_names_the_extra_and_gifs_still_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    write_gif(tmp_path / "a.gif", numbered_frames(5))
    assert data.open_videos(str(tmp_path), frames=5).take().shape == (1, 5, 16, 16, 3)
    (tmp_path / "b.mp4").write_bytes(b"")
    with pytest.raises(data.DataError, match=r'b\.mp4: .*PyAV, which is not installed: pip install "tfvae\[video\]"'):
        data.open_videos(str(tmp_path), frames=5)


def test_sources_without_clips_are_refused_in_one_line(tmp_path):
    with pytest.raises(data.DataError, match="holds no videos"):
        data.open_videos(str(tmp_path), frames=5)
    write_gif(tmp_path / "a.gif", numbered_frames(8))
    with pytest.raises(data.DataError, match=r"no clip of 5 frames .* shorter than 9 frames"):
        data.open_videos(str(tmp_path), frames=5, frame_stride=2)
    with pytest.raises(data.DataError, match="no such folder or video file"):
        data.open_videos(str(tmp_path / "missing"))
