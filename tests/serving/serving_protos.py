"""TF Serving's messages for the serving tests, and the tiny models they export.

`tensorflow-serving-api` ships `ModelServerConfig`, `PredictionLog` and `PredictRequest`, but not
`session_bundle_config_pb2`, whose `BatchingParameters` the model server parses `--batching_parameters_file` and
`batching_params.pbtxt` into: `batching_parameters_class` declares that message with the field names, numbers and types
of `tensorflow_serving/servables/tensorflow/session_bundle_config.proto`, which is what its text format depends on.
"""

import keras
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfvae import VAE, AutoencoderKL, networks

DATA_SIZE, LATENT_SIZE = 6, 2
WARMUP_IMAGE_SIZE = 8
_FIELD = descriptor_pb2.FieldDescriptorProto


def batching_parameters_class():
    """The class of `tensorflow.serving.BatchingParameters`, declared as its `.proto` file does."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="session_bundle_config_for_tests.proto", package="tensorflow.serving", syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = file.message_type.add(name="BatchingParameters")
    wrapped = [("max_batch_size", 1, "Int64Value"), ("batch_timeout_micros", 2, "Int64Value"),
               ("max_enqueued_batches", 3, "Int64Value"), ("num_batch_threads", 4, "Int64Value"),
               ("thread_pool_name", 5, "StringValue")]
    for name, number, wrapper in wrapped:
        message.field.add(name=name, number=number, type=_FIELD.TYPE_MESSAGE, label=_FIELD.LABEL_OPTIONAL,
                          type_name=f".google.protobuf.{wrapper}")
    message.field.add(name="allowed_batch_sizes", number=6, type=_FIELD.TYPE_INT64, label=_FIELD.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=_FIELD.TYPE_BOOL,
                      label=_FIELD.LABEL_OPTIONAL)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def read_batching_parameters(path):
    with open(path) as file:
        return text_format.Parse(file.read(), batching_parameters_class()())


def read_model_server_config(path):
    with open(path) as file:
        return text_format.Parse(file.read(), model_server_config_pb2.ModelServerConfig())


def tiny_vae(likelihood="bernoulli"):
    keras.utils.set_random_seed(4)
    make_decoder = networks.bernoulli_mlp_decoder if likelihood == "bernoulli" else networks.gaussian_mlp_decoder
    return VAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, 8), make_decoder(LATENT_SIZE, DATA_SIZE, 8),
               likelihood=likelihood, seed=5)


def tiny_autoencoder_kl():
    keras.utils.set_random_seed(4)
    return AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=4, scaling_factor=0.5, shift_factor=0.1, seed=3)
