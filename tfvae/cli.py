"""The `tfvae` command: `tfvae train` and `tfvae export`."""

import argparse
import dataclasses
import sys

import keras

from tfvae.export import export_saved_model
from tfvae.training import JIT_COMPILE_CHOICES, TrainConfig, train


def main(argv=None):
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.run(args)


def _build_parser():
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="tfvae", description="Variational autoencoders with TensorFlow, Keras 3 and TensorFlow Probability."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a VAE on the embedded Frey Face images and export a SavedModel",
        description="Train the AEVB appendix-C Gaussian VAE on Frey Face (shipped with tfvae, no network needed), "
        "save the Keras model and its history, and export a SavedModel for TF Serving.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--latent-size", type=int, default=defaults.latent_size, help="size of z (N_z)")
    train.add_argument("--hidden-units", type=int, default=defaults.hidden_units, help="width of the tanh layers")
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="Adam's step size")
    train.add_argument("--seed", type=int, default=defaults.seed, help="seed of weights, shuffling and noise")
    train.add_argument(
        "--jit-compile", choices=JIT_COMPILE_CHOICES, default=defaults.jit_compile, help="XLA for the train step"
    )
    train.add_argument("--output-dir", default=defaults.output_dir, help="where model.keras and logs go")
    train.add_argument("--export-root", default=defaults.export_root, help="root of the SavedModel versions")
    train.add_argument("--model-name", default=defaults.model_name, help="exports go to EXPORT_ROOT/MODEL_NAME/N")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=_train)

    export = commands.add_parser(
        "export",
        help="export a saved .keras VAE as a new SavedModel version",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    export.add_argument("model", help="a .keras file saved by tfvae")
    export.add_argument("--model-dir", required=True, help="EXPORT_ROOT/MODEL_NAME; the version goes below it")
    export.add_argument("--version", type=int, default=None, help="default: one more than the newest")
    export.add_argument("--keep", type=int, default=None, help="keep only the newest KEEP versions")
    export.set_defaults(run=_export)
    return parser


def _train(args):
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    options = {name: value for name, value in vars(args).items() if name in fields}
    config = TrainConfig(**options, verbose=0 if args.quiet else 1)
    model, history, export_path = train(config)
    elbo = history.history["elbo"][-1]
    print(f"final training ELBO per example: {elbo:.2f}")
    print(f"Keras model: {config.output_dir}/model.keras")
    print(f"SavedModel: {export_path}")
    return 0


def _export(args):
    model = keras.models.load_model(args.model, safe_mode=True)
    path = export_saved_model(model, args.model_dir, version=args.version, keep=args.keep)
    print(f"SavedModel: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
