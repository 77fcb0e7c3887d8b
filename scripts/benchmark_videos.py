"""How fast `tfvae.data.open_videos` streams clips from each kind of source: MP4 (H.264) and WebM (VP9) files decoded
by PyAV, GIFs decoded by TensorFlow, and TFRecords of PNG and JPEG frames.

The script writes `--videos` synthetic videos of `--frames-per-video` frames `--size` pixels square of each kind to a
temporary folder, then times `--rounds` epochs of `open_videos(..., frames=--clip-frames, image_size=--image-size)
.batches(--batch-size)` per kind, in alternating rounds, and prints the median clips per second of each.

Usage: `python scripts/benchmark_videos.py [--videos 8 --frames-per-video 65 --size 256 --image-size 128]`. Run it
on a quiet machine: it prints the date, commit and versions with the table.
"""

import argparse
import datetime
import os
import statistics
import subprocess
import tempfile
import time

import av
import numpy as np
import tensorflow as tf
from PIL import Image

from tfvae import data

PYAV_CODECS = {"mp4": "libx264", "webm": "libvpx-vp9"}


def synthetic_video(rng, frames, size):
    """A moving gradient with noise: frames that neither compress to nothing nor differ at random."""
    ramp = np.linspace(0, 255, size)[None, :, None] + np.linspace(0, 127, size)[:, None, None]
    video = [(ramp + 4 * index + rng.normal(0, 8, (size, size, 3))) % 256 for index in range(frames)]
    return np.stack(video).astype(np.uint8)


def write_sources(folder, videos):
    """Writes `videos` once per kind of source; returns `{kind: the source open_videos takes}`."""
    sources = {}
    for kind, codec in PYAV_CODECS.items():
        os.makedirs(os.path.join(folder, kind))
        for index, video in enumerate(videos):
            with av.open(os.path.join(folder, kind, f"{index}.{kind}"), "w") as container:
                stream = container.add_stream(codec, rate=24)
                stream.height, stream.width, stream.pix_fmt = *video.shape[1:3], "yuv420p"
                for frame in video:
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
                container.mux(stream.encode())
        sources[kind] = os.path.join(folder, kind)
    os.makedirs(os.path.join(folder, "gif"))
    for index, video in enumerate(videos):
        frames = [Image.fromarray(frame) for frame in video]
        frames[0].save(os.path.join(folder, "gif", f"{index}.gif"), save_all=True, append_images=frames[1:])
    sources["gif"] = os.path.join(folder, "gif")
    for image_format in ("png", "jpeg"):
        path = os.path.join(folder, f"{image_format}.tfrecord")
        data.write_video_records(path, videos, image_format)
        sources[f"TFRecord {image_format}"] = path
    return sources


def epoch_seconds(batches):
    start = time.perf_counter()
    clips = sum(len(batch) for batch in batches)
    return clips, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames-per-video", type=int, default=65)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--clip-frames", type=int, default=17)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    videos = [synthetic_video(rng, args.frames_per_video, args.size) for _ in range(args.videos)]
    with tempfile.TemporaryDirectory() as folder:
        sources = write_sources(folder, videos)
        batches = {kind: data.open_videos(source, frames=args.clip_frames, image_size=args.image_size)
                   .batches(args.batch_size) for kind, source in sources.items()}
        rates = {kind: [] for kind in batches}
        for _ in range(args.rounds):
            for kind, dataset in batches.items():
                clips, seconds = epoch_seconds(dataset)
                rates[kind].append(clips / seconds)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"{datetime.date.today()}, commit {commit}, TensorFlow {tf.__version__}, PyAV {av.__version__}, "
          f"{os.cpu_count()} cores; {args.videos} videos of {args.frames_per_video} frames {args.size}x{args.size}, "
          f"clips of {args.clip_frames} frames at {args.image_size}x{args.image_size}")
    print("| source | median clips per second |\n|---|---:|")
    for kind, values in rates.items():
        print(f"| {kind} | {statistics.median(values):.2f} |")


if __name__ == "__main__":
    main()
