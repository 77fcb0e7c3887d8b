"""Helpers shared by the tests."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

CODECS = {".mp4": "libx264", ".webm": "libvpx-vp9", ".mkv": "libx264", ".avi": "mpeg4"}  # PyAV's, by suffix
SHARED_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")


def run_python(code, timeout=300, env=None):
    """Runs `code` in a fresh Python process; fails the test on a non-zero exit, else returns its stdout."""
    return run_command([sys.executable, "-c", code], timeout=timeout, env=env)


def run_command(command, timeout=300, env=None):
    """Runs `command`; fails the test on a non-zero exit, else returns its stdout."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env)
    assert result.returncode == 0, f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    return result.stdout


def free_ports(count):
    """`count` TCP ports on 127.0.0.1 that were free a moment ago, for the workers of a local cluster."""
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


def run_workers(command, count=2, timeout=300):
    """Runs `command` as each of `count` workers of a cluster on 127.0.0.1 (described by `TF_CONFIG`).

    Fails the test unless every worker exits with 0.

    Returns:
        The workers' stdouts, in task order.
    """
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    workers = []
    try:
        for index in range(count):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}
            workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True))
        outputs = [worker.communicate(timeout=timeout) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-4000:]
    return [stdout for stdout, _ in outputs]

# Makes tfvae and TensorFlow Probability unimportable, as in a TF Serving-like consumer of a SavedModel.
TENSORFLOW_ONLY_PREAMBLE = """
import importlib.abc, sys
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tfvae", "tensorflow_probability"):
            raise ImportError(name + " is blocked: this process may use TensorFlow only")
sys.meta_path.insert(0, _Blocked())
import tensorflow as tf
"""

# Run in a process where only TensorFlow can be imported: every signature, in a fixed order (the random ones advance
# the saved seed state), results and signature specs written to files.
CALL_EVERY_SIGNATURE = """
import json, sys
import numpy as np
model_path, inputs_path, outputs_path, specs_path = sys.argv[1:]
inputs = np.load(inputs_path)
loaded = tf.saved_model.load(model_path)
calls = [("serving_default", {"x": inputs["x"]}), ("encode", {"x": inputs["x"]}), ("decode", {"z": inputs["z"]}),
         ("sample", {"num_samples": np.int32(5)}), ("sample_from_noise", {"noise": inputs["z"]}),
         ("elbo", {"x": inputs["x"]})]
outputs, specs = {}, {}
for name, arguments in calls:
    function = loaded.signatures[name]
    for key, value in function(**{k: tf.constant(v) for k, v in arguments.items()}).items():
        outputs[name + "/" + key] = value.numpy()
    specs[name] = {
        "inputs": {k: [s.shape.as_list(), s.dtype.name] for k, s in function.structured_input_signature[1].items()},
        "outputs": {k: [s.shape.as_list(), s.dtype.name] for k, s in function.structured_outputs.items()},
    }
np.savez(outputs_path, **outputs)
json.dump(specs, open(specs_path, "w"))
print("modules:", sorted(m for m in sys.modules if m.split(".")[0] in ("tfvae", "tensorflow_probability")))
"""


def call_every_signature(saved_model, x, z, folder):
    """Calls every signature of `saved_model` in a TensorFlow-only process, on examples `x` and latents `z`.

    Returns:
        `(outputs, specs)`: `{"<signature>/<output>": array}` and each signature's input and output specs as
        `{name: {"inputs"|"outputs": {key: [shape, dtype]}}}`.
    """
    np.savez(os.path.join(folder, "inputs.npz"), x=x, z=z)
    paths = [os.path.join(folder, name) for name in ("inputs.npz", "outputs.npz", "specs.json")]
    stdout = run_command([sys.executable, "-c", TENSORFLOW_ONLY_PREAMBLE + CALL_EVERY_SIGNATURE, str(saved_model),
                          *paths])
    assert "modules: []" in stdout
    with open(paths[2]) as file:
        return dict(np.load(paths[1])), json.load(file)


def reload_and_serve(model, x, folder):
    """`model` saved as `.keras` and loaded in safe mode, and what its `export`ed SavedModel's `serve(x)` answers.

    Returns:
        `(loaded model, served outputs as a NumPy array)`.
    """
    import keras
    import tensorflow as tf

    path = os.path.join(folder, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    loaded.export(os.path.join(folder, "saved_model"))
    exported = tf.saved_model.load(os.path.join(folder, "saved_model"))
    return loaded, exported.serve(tf.constant(x)).numpy()


def write_video(path, frames):
    """Writes uint8 RGB `frames` `[T, h, w, 3]` with PyAV, in the codec that `path`'s suffix names."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODECS[os.path.splitext(path)[1]], rate=8)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_gif(path, frames):
    """Writes uint8 RGB `frames` `[T, h, w, 3]` as an animated GIF with Pillow (TensorFlow decodes GIFs, no extra)."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
