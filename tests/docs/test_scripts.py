import csv
import glob
import importlib.util
import os
import re
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_command
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from tfvae import VAE, data, networks

SCRIPTS = os.path.join(os.path.dirname(__file__), "..", "..", "scripts")


def test_serving_benchmark_prints_its_table():
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "benchmark_serving.py"), "--repeats", "3"])
    rows = [line for line in stdout.splitlines() if line.split()[0].isdigit()]
    assert len(rows) == 10 and sum("SavedModel serving_default" in row for row in rows) == 2


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_benchmark_pairs_the_library_default_with_the_cli_configuration():
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "benchmark.py"), "--examples", "400", "--rounds", "2",
                          "--batches", "100", "--threads", "1", "--configurations", "library default", "tfvae train"],
                         timeout=900)
    rows = {line[6:27].strip(): line.split() for line in stdout.splitlines() if line.startswith("  100 ")}
    assert list(rows) == ["library default", "tfvae train"]
    for row in rows.values():
        examples_per_second, of_peak, warm_up_seconds = float(row[-6]), float(row[-3].rstrip("%")), float(row[-2])
        assert examples_per_second > 0 and of_peak > 0 and warm_up_seconds > 0


def test_inference_benchmark_times_every_compiled_method_and_the_data_set_encoders():
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "benchmark_inference.py"), "--rounds", "1",
                          "--calls", "2", "--examples", "1000"])
    for name in ("encoder network, eager", "encode(x).mean()", "reconstruct, as written",
                 "tfvae.latents.encode_dataset", "vae.encoder.predict"):
        (line,) = [line for line in stdout.splitlines() if line.startswith(name + " ")]
        assert float(line.split()[-1]) > 0


def test_array_fit_benchmark_compares_kerass_batching_with_tfvaes():
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "benchmark_fit_arrays.py"), "--examples", "500",
                          "--epochs", "2", "--rounds", "1"])
    for path in ("keras", "tfvae"):
        (line,) = [line for line in stdout.splitlines() if line.startswith(path + " ")]
        assert float(line.split()[1]) > 0 and line.split()[5] == "1"  # one epoch timed: "<n> of 1" late starts
    assert "as fast as Keras' batching" in stdout


def test_first_epochs_benchmark_finds_one_xla_compilation_in_an_xla_run():
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "benchmark_first_epochs.py"), "--runs", "1",
                          "--epochs", "4"], timeout=600)
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith("run "))
    row = lines[lines.index(header) + 1]
    columns = [header[start : start + 20].strip() for start in range(8, len(header), 20)]
    run = dict(zip(columns, map(float, row.split()[1:]), strict=True))
    assert run["compilations"] == 1, "the train step compiles once: static training batches, validation as a graph"
    assert run["epoch 2 ends"] > run["first train call"] > run["XLA compile"] > 0
    assert run["bound"] == pytest.approx(2 * run["steady epoch"] + run["XLA compile"], abs=3e-3)
    assert run["step compile"] == pytest.approx(run["first train call"] - run["later train call"], abs=3e-3)
    assert run["step compile"] > run["XLA compile"], "tracing comes before XLA's compilation"
    assert run["bound with tracing"] == pytest.approx(2 * run["steady epoch"] + run["step compile"], abs=3e-3)
    assert "epoch 2 ended within the bound" in stdout and "tracing included) in" in stdout


def test_first_epochs_benchmark_reads_compilations_in_seconds_and_in_milliseconds():
    log = ("I0000 device_compiler.h:538] Compilation of XLA executable time: 1.06 s (1059234 us) (cumulative: 1.06 s\n"
           "I0000 device_compiler.h:538] Compilation of XLA executable time: 979 ms (978689 us) (cumulative: 2.04 s")
    assert load_script("benchmark_first_epochs").COMPILE_LINE.findall(log) == ["1059234", "978689"]


def test_benchmark_counts_the_matmul_flops_that_tensorflow_counts_in_the_step():
    benchmark = load_script("benchmark")
    model = VAE(networks.gaussian_mlp_encoder(benchmark.DATA_SIZE, benchmark.LATENT, benchmark.HIDDEN),
                networks.bernoulli_mlp_decoder(benchmark.LATENT, benchmark.DATA_SIZE, benchmark.HIDDEN))

    @tf.function
    def gradients(x):
        with tf.GradientTape() as tape:
            model(x, training=True)
            loss = tf.add_n(model.losses)
        return tape.gradient(loss, model.trainable_variables)

    graph = gradients.get_concrete_function(tf.TensorSpec((100, benchmark.DATA_SIZE))).graph
    options = {**tf.compat.v1.profiler.ProfileOptionBuilder.float_operation(), "output": "none"}
    profile = tf.compat.v1.profiler.profile(graph, options=options)
    matmul_flops = sum(node.float_ops for node in profile.children if node.name.endswith(("MatMul", "MatMul_1")))
    assert matmul_flops == benchmark.step_flops(100) == 410_000_000


def test_training_benchmark_writes_a_profile_of_the_xla_step(tmp_path):
    run_command([sys.executable, os.path.join(SCRIPTS, "benchmark.py"), "--profile", str(tmp_path),
                 "--examples", "2000"])
    (path,) = glob.glob(str(tmp_path / "plugins" / "profile" / "*" / "*.xplane.pb"))
    space = xplane_pb2.XSpace.FromString(open(path, "rb").read())
    names = {metadata.name for plane in space.planes for metadata in plane.event_metadata.values()}
    # The XLA-compiled step ran while tracing: TensorFlow 2.21 names its execution CpuExecutable::ExecuteAsyncOnStream,
    # 2.20 the compiled HLO module (a_inference_one_step_on_data_<n>__.<m>).
    xla_runs = [name for name in names
                if name.startswith("CpuExecutable::") or re.search(r"inference_one_step_on_data_\d+__\.\d+", name)]
    assert xla_runs, sorted(names)
    # with its kernels traced one by one: matmuls in 2.21, XLA's fusions in 2.20
    assert any(name.startswith("MatMul") or name.endswith("_fusion") for name in names)


def test_aevb_reproduction_writes_its_csv_and_figure(tmp_path):
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "reproduce_aevb.py"), "--datasets", "frey_face",
                          "--latents", "2", "--optimizers", "adagrad", "adam", "--budget", "1e4", "--out",
                          str(tmp_path)], timeout=600)
    lines = (tmp_path / "aevb.csv").read_text().splitlines()
    assert lines[0] == "dataset,latent_size,optimizer,samples,train_elbo,test_elbo,seconds"
    assert [line.split(",")[2:4] for line in lines[1:]] == [["adagrad", "10000"], ["adam", "10000"]]
    assert (tmp_path / "aevb.png").read_bytes()[:4] == b"\x89PNG"
    printed = [dict(pair.split("=") for pair in line.split()) for line in stdout.splitlines()
               if line.startswith("dataset=")]
    # An untrained Gaussian decoder gives about N(x; 0.5, 1) per pixel; the decoder's log-variance clamp (-30)
    # bounds log p(x|z) by 0.5 * (30 - log 2 pi) per pixel, and KL >= 0.
    test_images = data.load_images("frey_face", "test").reshape(200, -1)
    untrained = np.mean(np.sum(-0.5 * (np.log(2 * np.pi) + (test_images - 0.5) ** 2), axis=1))
    ceiling = 560 * 0.5 * (30 - np.log(2 * np.pi))
    rows = list(csv.DictReader(lines))
    assert len(printed) == len(rows) == 2
    for row, line in zip(rows, printed, strict=True):
        for bound in ("train_elbo", "test_elbo"):
            value = float(row[bound])
            assert f"{value:.1f}" == line[bound], "the script prints what it writes"
            assert untrained + 560 < value < ceiling, (bound, value, untrained)  # at least 1 nat per pixel learned
        assert abs(float(row["train_elbo"]) - float(row["test_elbo"])) < 0.2 * abs(float(row["train_elbo"]))


def test_initialization_comparison_writes_a_row_per_run(tmp_path):
    stdout = run_command([sys.executable, os.path.join(SCRIPTS, "compare_initializations.py"), "--datasets",
                          "frey_face", "--initializations", "fan_in_uniform", "aevb_normal_variance", "--seeds", "3",
                          "--budget", "500", "--samples", "4", "--limit", "20", "--out", str(tmp_path)], timeout=600)
    lines = (tmp_path / "initializations.csv").read_text().splitlines()
    assert [line.split(",")[3:6] for line in lines[1:]] == [["fan_in_uniform", "3", "500"],
                                                           ["aevb_normal_variance", "3", "500"]]
    assert "frey_face 20 adam fan_in_uniform: test ELBO mean" in stdout
