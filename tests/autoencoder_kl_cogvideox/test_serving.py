"""The SavedModel signatures of `AutoencoderKLCogVideoX`, served in a process that imports TensorFlow only."""

import sys

import keras
import numpy as np
import pytest
from helpers import TENSORFLOW_ONLY_PREAMBLE, run_command

from tfvae.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX
from tfvae.serving import autoencoder_kl_cogvideox_signatures as serving

CLIPS = ((1, 4, 4), (17, 4, 6))  # frames, height, width: the second crosses the chunks of encode and decode
# The smallest model that compresses space and time (f = r = 2): the export's time goes to tracing its layers.
FACTOR = RATIO = 2

# In a process where only TensorFlow can be imported: each signature on both clips, then a size f does not divide.
CALL_SIGNATURES = """
import json, sys
import numpy as np
model_path, inputs_path, outputs_path = sys.argv[1:]
inputs = np.load(inputs_path)
loaded = tf.saved_model.load(model_path)
outputs, dtypes = {}, {}
for clip in ("0", "1"):
    for name, key in (("encode", "x"), ("decode", "latents")):
        for output, value in loaded.signatures[name](**{key: tf.constant(inputs[key + clip])}).items():
            outputs[f"{name}/{output}{clip}"] = value.numpy()
            dtypes[name + "/" + output] = value.dtype.name
try:
    loaded.signatures["encode"](x=tf.zeros((1, 1, 5, 6, 3)))
except tf.errors.InvalidArgumentError as error:
    print("refused:", [line for line in error.message.splitlines() if "divisible" in line])
np.savez(outputs_path, **outputs)
print("dtypes:", json.dumps(dtypes, sort_keys=True))
print("modules:", sorted(m for m in sys.modules if m.split(".")[0] in ("tfvae", "tensorflow_probability")))
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cogvideox_serving")
    keras.utils.set_random_seed(4)
    model = AutoencoderKLCogVideoX(block_out_channels=(4, 4), latent_channels=2, layers_per_block=1,
                                   norm_num_groups=2, temporal_compression_ratio=RATIO, scaling_factor=0.5,
                                   shift_factor=0.1, seed=3, down_block_types=("CogVideoXDownBlock3D",) * 2,
                                   up_block_types=("CogVideoXUpBlock3D",) * 2)
    assert model.downsampling_factor == FACTOR
    serving.build_export_archive(model).write_out(str(folder / "saved_model"), verbose=False)
    rng = np.random.default_rng(0)
    inputs = {}
    for index, (frames, height, width) in enumerate(CLIPS):
        inputs[f"x{index}"] = rng.uniform(-1, 1, (1, frames, height, width, 3)).astype("float32")
        latent_frames = 1 + (frames - 1) // RATIO
        inputs[f"latents{index}"] = rng.normal(
            size=(1, latent_frames, height // FACTOR, width // FACTOR, 2)).astype("float32")
    np.savez(folder / "inputs.npz", **inputs)
    stdout = run_command([sys.executable, "-c", TENSORFLOW_ONLY_PREAMBLE + CALL_SIGNATURES,
                          str(folder / "saved_model"), str(folder / "inputs.npz"), str(folder / "outputs.npz")])
    return model, inputs, dict(np.load(folder / "outputs.npz")), stdout


def test_signatures_answer_like_keras_for_two_frame_counts_and_sizes(served):
    model, inputs, outputs, stdout = served
    assert "modules: []" in stdout
    for clip in ("0", "1"):
        x, latents = inputs["x" + clip], inputs["latents" + clip]
        posterior = model.encode(x)
        np.testing.assert_allclose(outputs[f"encode/mean{clip}"], posterior.mean(), atol=1e-5)
        np.testing.assert_allclose(outputs[f"encode/logvar{clip}"], posterior.logvar, atol=1e-5)
        np.testing.assert_allclose(outputs[f"encode/latents{clip}"], model.scale_latents(outputs[f"encode/z{clip}"]),
                                   atol=1e-6)
        np.testing.assert_allclose(outputs[f"decode/videos{clip}"], model.decode(model.unscale_latents(latents)),
                                   atol=1e-5)
        assert outputs[f"decode/videos{clip}"].shape == x.shape


def test_outputs_are_float32_and_an_indivisible_size_is_refused(served):
    stdout = served[3]
    assert '"decode/videos": "float32"' in stdout and '"encode/z": "float32"' in stdout
    assert "refused: [" in stdout and "Video height and width must be divisible by 2" in stdout
