import os

import pytest
from serving_protos import read_batching_parameters, tiny_vae

from tfvae.serving import batching, export


def test_the_text_file_parses_as_tf_servings_batching_parameters(tmp_path):
    parameters = batching.BatchingParameters(max_batch_size=8, batch_timeout_micros=250, allowed_batch_sizes=(1, 4, 8),
                                             num_batch_threads=3)
    parameters.write(tmp_path / "batching_params.pbtxt")
    parsed = read_batching_parameters(tmp_path / "batching_params.pbtxt")
    assert parsed.max_batch_size.value == 8 and parsed.batch_timeout_micros.value == 250
    assert parsed.num_batch_threads.value == 3 and list(parsed.allowed_batch_sizes) == [1, 4, 8]


@pytest.mark.parametrize("sizes", [(2, 1, 8), (1, 4), (0, 8), (1, 1, 8)])
def test_batch_sizes_tf_serving_refuses_are_refused(sizes):
    with pytest.raises(ValueError, match="must increase from 1 or more up to max_batch_size = 8"):
        batching.BatchingParameters(max_batch_size=8, allowed_batch_sizes=sizes)


def test_batch_sizes_double_up_to_the_largest():
    assert batching.batch_sizes_up_to(1) == (1,)
    assert batching.batch_sizes_up_to(16) == (1, 2, 4, 8, 16)
    assert batching.batch_sizes_up_to(12) == (1, 2, 4, 8, 12)


def test_the_largest_batch_is_the_smallest_with_90_percent_of_the_best_throughput():
    # Latency flat up to 4 examples (throughput 1, 2, 4 per ms), then proportional to the batch (4 per ms), until 64
    # runs out of cache (3.2 per ms): 4 is the smallest batch within 90% of the best throughput.
    curve = {1: 1e-3, 2: 1e-3, 4: 1e-3, 8: 2e-3, 16: 4e-3, 64: 20e-3}
    chosen = batching.choose_batching(curve, num_batch_threads=2)
    assert chosen == batching.BatchingParameters(max_batch_size=4, batch_timeout_micros=1000,
                                                 allowed_batch_sizes=(1, 2, 4), num_batch_threads=2)
    # Latency 1 ms + 0.2 ms per example: throughput b / (1 + 0.2 b) per ms, 4.90 at 256, 4.64 at 64 and 4.32 at 32,
    # so 64 is the smallest batch within 90% (4.41) of the best.
    growing = {size: 1e-3 + 2e-4 * size for size in batching.batch_sizes_up_to(256)}
    assert batching.choose_batching(growing).max_batch_size == 64
    assert batching.choose_batching({1: 1e-6, 2: 2e-6}).batch_timeout_micros == batching.MIN_TIMEOUT_MICROS


def test_the_latency_curve_times_each_batch_size_on_batches_of_copies():
    seen = []

    def signature(x):
        seen.append(x.shape)

    curve = batching.latency_curve(signature, {"x": batching.np.zeros((3, 2))}, (1, 4), repeats=2)
    assert list(curve) == [1, 4] and all(seconds > 0 for seconds in curve.values())
    assert seen == [(1, 3, 2)] * 3 + [(4, 3, 2)] * 3, "one untimed call, then the repeats"


def test_each_version_carries_its_batching_parameters_measured_or_default(tmp_path):
    model = tiny_vae()
    default = export.export_saved_model(model, str(tmp_path / "vae"))
    parsed = read_batching_parameters(os.path.join(default, batching.BATCHING_FILE))
    assert parsed.max_batch_size.value == 32 and list(parsed.allowed_batch_sizes) == [1, 2, 4, 8, 16, 32]
    server_wide = read_batching_parameters(tmp_path / export.SERVER_BATCHING_FILE)
    assert server_wide.SerializeToString() == parsed.SerializeToString()

    measured = export.export_saved_model(model, str(tmp_path / "vae"), measure_batching=True)
    parsed = read_batching_parameters(os.path.join(measured, batching.BATCHING_FILE))
    sizes = list(parsed.allowed_batch_sizes)
    assert sizes == list(batching.batch_sizes_up_to(parsed.max_batch_size.value))
    assert parsed.max_batch_size.value <= export.VAE_LARGEST_MEASURED_BATCH
    assert parsed.batch_timeout_micros.value >= batching.MIN_TIMEOUT_MICROS
    assert parsed.num_batch_threads.value == os.cpu_count()
