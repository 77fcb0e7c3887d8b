"""The serving guide's TF Serving REST examples (docs/guides/serving.md), checked against a real export's signatures.

No model server runs here, so `rest_predict` applies TF Serving's documented REST rules (row format: `instances` in,
`predictions` out; columnar: `inputs` in, `outputs` out; a single output is given without its name) to the
SavedModel's signatures, and the guide's responses must have the same names and shapes.
"""

import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import VAE, networks
from tfvae.serving import export

GUIDE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "guides", "serving.md")


def guide_examples():
    """`{signature: (request, response)}` from the guide's REST section."""
    with open(GUIDE) as file:
        text = file.read()
    section = text.split("## REST requests and responses", 1)[1].split("\n## ", 1)[0]
    examples = {}
    for part in re.split(r"^#### ", section, flags=re.MULTILINE)[1:]:
        name = part.split("\n", 1)[0].strip("` ")
        blocks = re.findall(r"```json\n(.*?)```", part, flags=re.DOTALL)
        assert len(blocks) == 2, f"{name}: a request and a response"
        examples[name] = tuple(json.loads(block) for block in blocks)
    return examples


def rest_predict(signature, request):
    input_names = list(signature.structured_input_signature[1])
    if "instances" in request:
        rows = request["instances"]
        if isinstance(rows[0], dict):
            inputs = {name: [row[name] for row in rows] for name in rows[0]}
        else:
            assert len(input_names) == 1, "a bare instance list needs a single input"
            inputs = {input_names[0]: rows}
    else:
        columns = request["inputs"]
        inputs = columns if isinstance(columns, dict) else {input_names[0]: columns}
    assert sorted(inputs) == sorted(input_names)
    specs = signature.structured_input_signature[1]
    outputs = signature(**{name: tf.constant(value, specs[name].dtype) for name, value in inputs.items()})
    outputs = {name: value.numpy().tolist() for name, value in outputs.items()}
    if "instances" in request:
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values()))}
        count = len(next(iter(outputs.values())))
        return {"predictions": [{name: value[i] for name, value in outputs.items()} for i in range(count)]}
    return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}


def structure(value):
    """Names and shapes of a JSON value, with the numbers left out."""
    if isinstance(value, dict):
        return {key: structure(item) for key, item in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [structure(item) for item in value]
    return np.shape(value)


@pytest.fixture(scope="module")
def served_model(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = VAE(
        networks.gaussian_mlp_encoder(4, 2, 8),
        networks.gaussian_mlp_decoder(2, 4, 8, mean_activation="sigmoid"),
        likelihood="gaussian",
        seed=0,
    )
    path = export.export_saved_model(model, str(tmp_path_factory.mktemp("served") / "frey_face"))
    return tf.saved_model.load(path)


def test_the_guide_has_an_example_for_every_signature():
    assert list(guide_examples()) == list(export.SIGNATURE_NAMES)


@pytest.mark.parametrize("name", export.SIGNATURE_NAMES)
def test_guide_example_matches_the_signature(served_model, name):
    request, documented_response = guide_examples()[name]
    assert request.get("signature_name", "serving_default") == name
    response = rest_predict(served_model.signatures[name], request)
    assert structure(response) == structure(documented_response)
