"""Data for tfvae: image sources (folders, TFRecords, `tfds` sets, IDX and NumPy files) and the `tf.data` pipeline.

`open_images` (one split) and `open_training_images` (training and validation) are the entry point: they give an
image set whose `batches` are a `tf.data.Dataset` for `fit`. `load_images` loads a split into memory.
"""

from tfvae.data.arrays import read_idx, scale_to_unit_interval
from tfvae.data.epochs import EpochCounter
from tfvae.data.errors import DataError
from tfvae.data.images import (
    CACHE_CHOICES,
    CACHE_IN_MEMORY_BYTES,
    IN_MEMORY_TFDS,
    PREPARED_OFFLINE,
    InMemoryImages,
    StreamedImages,
    load_images,
    open_images,
    open_training_images,
    raising_data_errors,
)
from tfvae.data.pipeline import (
    array_batches,
    check_channels,
    parse_image_size,
    pipeline,
    resize_advice,
    resize_and_crop,
)
from tfvae.data.video_records import write_video_records
from tfvae.data.videos import VideoClips, open_videos

__all__ = [
    "CACHE_CHOICES",
    "CACHE_IN_MEMORY_BYTES",
    "IN_MEMORY_TFDS",
    "PREPARED_OFFLINE",
    "DataError",
    "EpochCounter",
    "InMemoryImages",
    "StreamedImages",
    "VideoClips",
    "array_batches",
    "check_channels",
    "load_images",
    "open_images",
    "open_training_images",
    "open_videos",
    "parse_image_size",
    "pipeline",
    "raising_data_errors",
    "read_idx",
    "resize_advice",
    "resize_and_crop",
    "scale_to_unit_interval",
    "write_video_records",
]
