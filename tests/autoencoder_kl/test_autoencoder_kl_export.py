import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import TENSORFLOW_ONLY_PREAMBLE, run_command

from tfvae import AutoencoderKL
from tfvae.serving import export

SIZES = ((8, 6), (4, 10))  # two image sizes, both divisible by f = 2

# In a process where only TensorFlow can be imported: every signature at two image sizes, then an image size that f
# does not divide.
CALL_SIGNATURES = """
import json, sys
import numpy as np
model_path, inputs_path, outputs_path = sys.argv[1:]
inputs = np.load(inputs_path)
loaded = tf.saved_model.load(model_path)
outputs, specs = {}, {}
for size in ("0", "1"):
    for name, key in (("serving_default", "x"), ("encode", "x"), ("decode", "latents")):
        function = loaded.signatures[name]
        for output, value in function(**{key: tf.constant(inputs[key + size])}).items():
            outputs[f"{name}/{output}{size}"] = value.numpy()
            specs[name + "/" + output] = value.dtype.name
try:
    loaded.signatures["serving_default"](x=tf.zeros((1, 5, 6, 3)))
except tf.errors.InvalidArgumentError as error:
    print("refused:", [line for line in error.message.splitlines() if "divisible" in line])
np.savez(outputs_path, **outputs)
print("dtypes:", json.dumps(specs, sort_keys=True))
print("modules:", sorted(m for m in sys.modules if m.split(".")[0] in ("tfvae", "tensorflow_probability")))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny autoencoder, exported, and the outputs of its signatures in a TensorFlow-only process."""
    folder = tmp_path_factory.mktemp("autoencoder_kl_export")
    keras.utils.set_random_seed(2)
    model = AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=4, scaling_factor=0.5, shift_factor=0.1, seed=3)
    seed_state = model.seed_generator.state.numpy()
    path = export.export_saved_model(model, str(folder / "autoencoder"))
    rng = np.random.default_rng(0)
    inputs = {}
    for index, (height, width) in enumerate(SIZES):
        inputs[f"x{index}"] = rng.uniform(-1, 1, (2, height, width, 3)).astype("float32")
        inputs[f"latents{index}"] = rng.normal(size=(2, height // 2, width // 2, 4)).astype("float32")
    np.savez(folder / "inputs.npz", **inputs)
    code = TENSORFLOW_ONLY_PREAMBLE + CALL_SIGNATURES
    stdout = run_command([sys.executable, "-c", code, path, str(folder / "inputs.npz"), str(folder / "outputs.npz")])
    return model, seed_state, inputs, dict(np.load(folder / "outputs.npz")), stdout


def test_signatures_answer_like_keras_at_two_image_sizes_in_a_tensorflow_only_process(exported):
    model, seed_state, inputs, outputs, stdout = exported
    assert "modules: []" in stdout
    model.seed_generator.state.assign(seed_state)
    for size in ("0", "1"):
        x, latents = inputs["x" + size], inputs["latents" + size]
        posterior = model.encode(x)
        z = posterior.sample(seed=model.next_seed())
        expected = {
            "serving_default/reconstruction": model(x),
            "encode/mean": posterior.mean(),
            "encode/logvar": posterior.logvar,
            "encode/z": z,
            "encode/latents": (z - 0.1) * 0.5,
            "decode/images": model.decode(latents / 0.5 + 0.1),
        }
        for name, value in expected.items():
            np.testing.assert_allclose(outputs[name + size], value, atol=1e-5, err_msg=name + size)
    assert outputs["serving_default/reconstruction1"].shape == (2, 4, 10, 3)
    assert outputs["encode/latents1"].shape == (2, 2, 5, 4)
    assert '"decode/images": "float32"' in stdout


def test_an_image_size_the_factor_does_not_divide_is_refused(exported):
    (refusal,) = [line for line in exported[-1].splitlines() if line.startswith("refused:")]
    assert "Image height and width must be divisible by 2" in refusal


def test_mixed_precision_autoencoder_exports_float32(tmp_path):
    model = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, dtype="mixed_float16")
    loaded = tf.saved_model.load(export.export_saved_model(model, str(tmp_path / "mixed")))
    outputs = loaded.signatures["encode"](x=np.zeros((1, 4, 4, 3), "float32"))
    assert {value.dtype.name for value in outputs.values()} == {"float32"}
    assert loaded.signatures["decode"](latents=np.zeros((1, 4, 4, 4), "float32"))["images"].dtype.name == "float32"
