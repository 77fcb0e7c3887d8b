"""Requests as TF Serving makes them: the warm-up records of each version, and what a client sends by gRPC and REST.

No model server runs here. A process that can import TensorFlow and TF Serving's API but neither tfvae nor TensorFlow
Probability does what the server does with a request: parse the `PredictRequest` (from the warm-up file, or as a gRPC
client serialized it), check its input keys and dtypes against the signature, convert each `TensorProto` to a tensor
(`tf.make_ndarray`, as the server's `Tensor::FromProto`), or, for a REST body, stack `instances` along a new batch
dimension (row format) or take `inputs` as they are (columnar) in the signature's dtype; then it calls the signature.
"""

import base64
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import TENSORFLOW_ONLY_PREAMBLE, run_command
from serving_protos import DATA_SIZE, LATENT_SIZE, WARMUP_IMAGE_SIZE, tiny_autoencoder_kl, tiny_vae
from tensorflow_serving.apis import predict_pb2

from tfvae.serving import export
from tfvae.serving.batching import BatchingParameters
from tfvae.serving.warmup import WARMUP_FILE

SERVE_REQUESTS = """
import base64, json, sys
import numpy as np
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
model_path, requests_path, outputs_path = sys.argv[1:]
loaded = tf.saved_model.load(model_path)

def predict(request):
    signature = loaded.signatures[request.model_spec.signature_name or "serving_default"]
    specs = signature.structured_input_signature[1]
    assert set(request.inputs) == set(specs), (sorted(request.inputs), sorted(specs))
    inputs = {}
    for key, proto in request.inputs.items():
        assert proto.dtype == specs[key].dtype.as_datatype_enum, (key, proto.dtype)
        inputs[key] = tf.constant(tf.make_ndarray(proto))
        assert specs[key].shape.is_compatible_with(inputs[key].shape), (key, inputs[key].shape)
    return signature(**inputs)

def rest_predict(body):
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]
    if "instances" in body:
        rows = body["instances"]
        columns = {key: [row[key] for row in rows] for key in rows[0]} if isinstance(rows[0], dict) else {
            next(iter(specs)): rows}
    else:
        columns = body["inputs"] if isinstance(body["inputs"], dict) else {next(iter(specs)): body["inputs"]}
    assert set(columns) == set(specs), (sorted(columns), sorted(specs))
    return signature(**{key: tf.constant(np.asarray(value, specs[key].dtype.as_numpy_dtype))
                        for key, value in columns.items()})

outputs = {}
for record in tf.data.TFRecordDataset(model_path + "/assets.extra/tf_serving_warmup_requests"):
    request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
    batch = next(iter(request.inputs.values())).tensor_shape.dim[0].size
    for key, value in predict(request).items():
        outputs[f"warmup/{request.model_spec.name}/{request.model_spec.signature_name}/{batch}/{key}"] = value.numpy()
with open(requests_path) as file:
    for name, kind, request in json.load(file):
        if kind == "grpc":
            result = predict(predict_pb2.PredictRequest.FromString(base64.b64decode(request)))
        else:
            result = rest_predict(request)
        for key, value in result.items():
            outputs[f"{kind}/{name}/{key}"] = value.numpy()
np.savez(outputs_path, **outputs)
print("modules:", sorted(m for m in sys.modules if m.split(".")[0] in ("tfvae", "tensorflow_probability")))
"""


def grpc_request(model_name, signature_name, inputs):
    """A serialized `PredictRequest`, built as TF Serving's Python client documentation does."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return base64.b64encode(request.SerializeToString()).decode()


def serve(model, folder, model_name, client_inputs, **export_options):
    """Exports `model`, then replays its warm-up records and the clients' requests in a TensorFlow-only process.

    Args:
        client_inputs: `{signature: {input: array}}`, each sent once by gRPC and once as a REST body.

    Returns:
        `(version path, {"<kind>/<name>/<output>": array})`, kind `warmup` (name `<model>/<signature>/<batch>`),
        `grpc`, `rest` (row format) or `columnar`.
    """
    path = export.export_saved_model(model, str(folder / model_name), **export_options)
    requests = []
    for signature_name, inputs in client_inputs.items():
        requests.append((signature_name, "grpc", grpc_request(model_name, signature_name, inputs)))
        lists = {key: np.asarray(value).tolist() for key, value in inputs.items()}
        if all(np.ndim(value) for value in inputs.values()):
            (key, rows), = lists.items()
            requests.append((signature_name, "rest", {"signature_name": signature_name, "instances": rows}))
        requests.append((signature_name, "columnar", {"signature_name": signature_name, "inputs": lists}))
    with open(folder / "requests.json", "w") as file:
        json.dump(requests, file)
    stdout = run_command([sys.executable, "-c", TENSORFLOW_ONLY_PREAMBLE + SERVE_REQUESTS, path,
                          str(folder / "requests.json"), str(folder / "outputs.npz")])
    assert "modules: []" in stdout
    return path, dict(np.load(folder / "outputs.npz"))


@pytest.fixture(scope="module")
def served_vae(tmp_path_factory):
    model = tiny_vae("gaussian")
    rng = np.random.default_rng(0)
    x, z = rng.random((3, DATA_SIZE)).astype("float32"), rng.normal(size=(3, LATENT_SIZE)).astype("float32")
    inputs = {"serving_default": {"x": x}, "encode": {"x": x}, "decode": {"z": z},
              "sample": {"num_samples": np.int32(4)}, "sample_from_noise": {"noise": z}, "elbo": {"x": x}}
    return (model, x, z, *serve(model, tmp_path_factory.mktemp("vae"), "frey_face", inputs))


@pytest.fixture(scope="module")
def served_autoencoder_kl(tmp_path_factory):
    model = tiny_autoencoder_kl()
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (2, 8, 4, 3)).astype("float32")
    latents = rng.normal(size=(2, 4, 2, 4)).astype("float32")
    inputs = {"serving_default": {"x": x}, "encode": {"x": x}, "decode": {"latents": latents}}
    served = serve(model, tmp_path_factory.mktemp("autoencoder_kl"), "autoencoder", inputs,
                   warmup_image_size=WARMUP_IMAGE_SIZE)
    return (model, x, latents, *served)


def warmup_calls(outputs):
    """`{(model, signature, batch size): {output: array}}` from the replayed warm-up records."""
    calls = {}
    for key, value in outputs.items():
        if key.startswith("warmup/"):
            _, model_name, signature, batch, output = key.split("/")
            calls.setdefault((model_name, signature, int(batch)), {})[output] = value
    return calls


def test_the_warmup_requests_call_every_batchable_vae_signature_at_every_allowed_batch_size(served_vae):
    *_, path, outputs = served_vae
    calls = warmup_calls(outputs)
    signatures = ["serving_default", "encode", "decode", "sample_from_noise", "elbo"]  # sample's input is a scalar
    sizes = BatchingParameters().allowed_batch_sizes
    assert sorted(calls) == sorted(("frey_face", name, size) for name in signatures for size in sizes)
    for (_, _, size), results in calls.items():
        for value in results.values():
            assert value.shape[0] == size and np.all(np.isfinite(value))
    assert os.path.getsize(os.path.join(path, WARMUP_FILE)) < 10_000, "one value per tensor, whatever the batch"


def test_the_warmup_requests_of_an_autoencoder_kl_use_the_warmup_image_size(served_autoencoder_kl):
    *_, outputs = served_autoencoder_kl
    calls = warmup_calls(outputs)
    sizes = export.AUTOENCODER_KL_BATCHING.allowed_batch_sizes
    assert sorted(calls) == sorted(("autoencoder", name, size)
                                   for name in ("serving_default", "encode", "decode") for size in sizes)
    assert calls["autoencoder", "serving_default", 4]["reconstruction"].shape == (4, 8, 8, 3)
    assert calls["autoencoder", "decode", 2]["images"].shape == (2, 8, 8, 3)


def test_grpc_and_rest_requests_to_every_vae_signature_give_the_documented_outputs(served_vae):
    model, x, z, _, outputs = served_vae
    expected = {
        "serving_default/reconstruction": model.reconstruct(x),
        "encode/mean": model.encode(x).mean(),
        "encode/logvar": model.encode(x).logvar,
        "sample_from_noise/z": z,
        "sample_from_noise/sample": model.generate(z),
        **{f"decode/{key}": value for key, value in model.likelihood.named_parameters(model.decode(z)).items()},
    }
    for kind in ("grpc", "rest", "columnar"):
        if kind == "rest":  # the row format has no request for a scalar input
            assert "rest/sample/z" not in outputs
        for key, value in expected.items():
            np.testing.assert_allclose(outputs[f"{kind}/{key}"], value, atol=1e-5, err_msg=f"{kind}/{key}")
        assert outputs[f"{kind}/encode/z"].shape == (3, LATENT_SIZE)
        elbo = {key: outputs[f"{kind}/elbo/{key}"] for key in ("elbo", "kl", "reconstruction")}
        np.testing.assert_allclose(elbo["elbo"], -(elbo["kl"] + elbo["reconstruction"]), rtol=1e-5)
        assert elbo["elbo"].shape == (3,)
    for kind in ("grpc", "columnar"):
        sampled = outputs[f"{kind}/sample/z"]
        assert sampled.shape == (4, LATENT_SIZE)
        np.testing.assert_allclose(outputs[f"{kind}/sample/sample"], model.generate(sampled), atol=1e-5)


def test_grpc_and_rest_requests_to_every_autoencoder_kl_signature_give_the_documented_outputs(served_autoencoder_kl):
    model, x, latents, _, outputs = served_autoencoder_kl
    posterior = model.encode(x)
    expected = {
        "serving_default/reconstruction": model(x),
        "encode/mean": posterior.mean(),
        "encode/logvar": posterior.logvar,
        "decode/images": model.decode(latents / 0.5 + 0.1),
    }
    for kind in ("grpc", "rest", "columnar"):
        for key, value in expected.items():
            np.testing.assert_allclose(outputs[f"{kind}/{key}"], value, atol=1e-5, err_msg=f"{kind}/{key}")
        np.testing.assert_allclose(outputs[f"{kind}/encode/latents"], (outputs[f"{kind}/encode/z"] - 0.1) * 0.5,
                                   atol=1e-6)


def test_a_failure_while_writing_the_warmup_requests_leaves_no_version(tmp_path, monkeypatch):
    def fail_midway(version_path, *args):
        os.makedirs(os.path.join(version_path, "assets.extra"))
        raise OSError("disk full")

    monkeypatch.setattr(export, "write_warmup_requests", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        export.export_saved_model(tiny_vae(), str(tmp_path / "vae"))
    assert os.listdir(tmp_path / "vae") == [], "no version, no staging folder"
    assert not os.path.exists(tmp_path / "models.config")
