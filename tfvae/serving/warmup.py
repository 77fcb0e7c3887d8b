"""TF Serving's warm-up requests: the calls a server makes to a version before it lets clients reach it.

TF Serving replays `<version>/assets.extra/tf_serving_warmup_requests`, a TFRecord of `tensorflow.serving.
PredictionLog`s, when it loads the version, so that the first clients do not pay for tracing, memory allocation and
kernel selection. tfvae writes one `predict_log` per signature and batch size: each signature is called once at
every size a batch can be padded to (`BatchingParameters.allowed_batch_sizes`), on inputs of zeros.

A signature with an input that has no batch dimension (the VAE's `sample`, whose input is the scalar `num_samples`)
gets no warm-up request: TF Serving with `--enable_batching` refuses it ("input tensors must have at least one
dimension"), and a warm-up request that fails stops the version from loading.

The records are written without TF Serving's Python package: a `PredictionLog` is a few nested length-delimited
protobuf fields around TensorFlow's own `TensorProto`s, and the protobuf wire format and TF Serving's field numbers
(stable: its clients depend on them) are all it takes. The tensors carry one value and a shape, which `TensorProto`
broadcasts (the files stay small whatever the batch).
"""

import os

import tensorflow as tf

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")

# Field numbers of tensorflow_serving/apis: PredictionLog.predict_log, PredictLog.request, PredictRequest.model_spec
# and .inputs (a map: entries of key 1 and value 2), ModelSpec.name and .signature_name.
_PREDICT_LOG, _REQUEST, _MODEL_SPEC, _INPUTS, _MAP_KEY, _MAP_VALUE, _NAME, _SIGNATURE_NAME = 6, 1, 1, 2, 1, 2, 1, 3


def predict_log(model_name, signature_name, inputs):
    """A serialized `PredictionLog` whose `predict_log.request` calls `signature_name` of `model_name`.

    Args:
        model_name: the model's name on the server.
        signature_name: the signature to call.
        inputs: `{input name: tf.TensorProto}`.

    Returns:
        bytes, which `prediction_log_pb2.PredictionLog.FromString` reads.
    """
    model_spec = _field(_NAME, model_name.encode()) + _field(_SIGNATURE_NAME, signature_name.encode())
    request = _field(_MODEL_SPEC, model_spec) + b"".join(
        _field(_INPUTS, _field(_MAP_KEY, name.encode()) + _field(_MAP_VALUE, tensor.SerializeToString()))
        for name, tensor in sorted(inputs.items())
    )
    return _field(_PREDICT_LOG, _field(_REQUEST, request))


def write_warmup_requests(version_path, model_name, example_shapes, batch_sizes):
    """Writes `<version_path>/assets.extra/tf_serving_warmup_requests`.

    Args:
        version_path: the SavedModel folder.
        model_name: the model's name on the server.
        example_shapes: `{signature: {input name: shape of one example}}`, float32 inputs with a batch dimension.
        batch_sizes: the batch sizes each signature is called at.
    """
    path = os.path.join(version_path, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, shapes in example_shapes.items():
            for size in batch_sizes:
                inputs = {name: tf.make_tensor_proto(0.0, tf.float32, (size, *shape)) for name, shape in shapes.items()}
                writer.write(predict_log(model_name, signature_name, inputs))


def _field(number, payload):
    """A length-delimited protobuf field (wire type 2): tag, length, payload."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value):
    encoded = bytearray()
    while value > 0x7F:
        encoded.append(value & 0x7F | 0x80)
        value >>= 7
    encoded.append(value)
    return bytes(encoded)
