"""Each model family described once to `tfvae train`: how it is built, what it monitors, how it is summarised.

`tfvae.run.training` reads a run as config -> recipe -> data -> model -> fit -> export, whatever the family;
`recipe_for(config)` gives the recipe of `config.model`. Both families export through
`tfvae.serving.export_saved_model`, which knows their signatures.
"""

import numpy as np

from tfvae import data, networks
from tfvae._keras.fused_adam import FusedAdam
from tfvae.autoencoder_kl import AutoencoderKL, AutoencoderKLTrainer, LatentDiffusionLoss, PatchDiscriminator
from tfvae.input_checks import InputError
from tfvae.run import callbacks, summary_figure
from tfvae.run.config import AUTOENCODER_KL
from tfvae.vae import VAE

DIAGNOSTIC_EXAMPLES = 1000  # examples of each split that TensorBoard's latent diagnostics encode every epoch
SHOWN_EXAMPLES = 8  # examples shown with their reconstructions in TensorBoard and the summary figure


class VAERecipe:
    """`tfvae.VAE` runs: appendix-C MLPs on flattened images (`mlp`), or the convolutional pair (`conv`).

    The ELBO picks the best model (`"max"`); TensorBoard shows the latent diagnostics, reconstructions, prior
    samples and, for two latent dimensions, the manifold; the summary figure shows prior samples too.
    """

    monitored = ("elbo", "max")
    final_report = ("ELBO per example", 2)  # how `tfvae train` prints the final value: label, decimals

    def __init__(self, family):
        self.family = family
        self.flatten = family == "mlp"

    def build(self, config, image_shape):
        """The VAE of `config` for images of `image_shape`."""
        mean_activation = "sigmoid" if config.likelihood == "gaussian" else None
        if self.flatten:
            size = int(np.prod(image_shape))
            encoder = networks.gaussian_mlp_encoder(size, config.latent_size, config.hidden_units)
            if config.likelihood == "bernoulli":
                decoder = networks.bernoulli_mlp_decoder(config.latent_size, size, config.hidden_units)
            else:
                decoder = networks.gaussian_mlp_decoder(config.latent_size, size, config.hidden_units,
                                                        mean_activation)
        else:
            _check_conv_images(image_shape, config)
            encoder = networks.conv_encoder(image_shape, config.latent_size)
            latent_shape = encoder.output_shape[1:-1] + (config.latent_size,)
            decoder = networks.conv_decoder(latent_shape, image_shape, config.likelihood,
                                            mean_activation=mean_activation)
        return VAE(encoder, decoder, likelihood=config.likelihood, beta=config.beta,
                   kl_warmup_steps=config.kl_warmup_steps, free_bits=config.free_bits, seed=config.seed,
                   name=f"{config.model_name}_vae")

    def optimizers(self, config):
        """`compile`'s optimizer arguments: Adam, as a `FusedAdam` (Adam's steps in fewer ops)."""
        return {"optimizer": FusedAdam(config.learning_rate)}

    def trained_model(self, model):
        """What the run saves as `model.keras` and exports."""
        return model

    def binarize(self, config):
        """Whether the training batches are binarized dynamically."""
        return config.binarize

    def tensorboard_callbacks(self, config, log_dir, inputs, image_shape):
        shown = inputs.get("validation", inputs["train"])[:SHOWN_EXAMPLES]
        validation = inputs.get("validation")
        return [
            callbacks.LatentDiagnostics(log_dir, inputs["train"][:DIAGNOSTIC_EXAMPLES],
                                        None if validation is None else validation[:DIAGNOSTIC_EXAMPLES]),
            callbacks.SampleImages(log_dir, shown, image_shape, config.image_every, seed=config.seed),
        ]

    def shown_examples(self, config):
        """How many examples of each split the callbacks and the summary figure need."""
        return DIAGNOSTIC_EXAMPLES if config.tensorboard else SHOWN_EXAMPLES

    def prior_samples(self, model, image_shape):
        """32 images decoded from N(0, I) by the fitted `model`, for the summary figure."""
        noise = np.random.default_rng(0).standard_normal((32, *model.latent_shape())).astype(np.float32)
        return summary_figure.as_images(model.generate(noise), image_shape)


class AutoencoderKLRecipe(VAERecipe):
    """`tfvae.AutoencoderKL` runs, trained by an `AutoencoderKLTrainer` with latent diffusion's objective.

    The validation reconstruction error picks the best model (`"min"`); `best.keras` holds the trainer
    (autoencoder, discriminator, objective, both optimizers), `model.keras` and the export the autoencoder alone.
    TensorBoard and the summary figure show reconstructions only: N(0, I) is not its latents' distribution.
    """

    monitored = ("reconstruction", "min")
    final_report = ("reconstruction error per pixel", 4)

    def __init__(self):
        super().__init__(AUTOENCODER_KL)
        self.flatten = False

    def build(self, config, image_shape):
        """An `AutoencoderKLTrainer` of `config` for images of `image_shape`, built.

        Raises:
            InputError: when the images are too small for the model, or their sides not divisible by its
                downsampling.
        """
        autoencoder = AutoencoderKL(
            in_channels=image_shape[-1], out_channels=image_shape[-1], block_out_channels=config.block_out_channels,
            layers_per_block=config.layers_per_block, latent_channels=config.latent_size,
            norm_num_groups=config.norm_num_groups, seed=config.seed, name=f"{config.model_name}_autoencoder_kl",
        )
        factor, sides = autoencoder.downsampling_factor, image_shape[:2]
        if any(side % factor for side in sides):
            raise InputError(
                f"The images are {sides[0]}x{sides[1]} pixels, but an AutoencoderKL with "
                f"{len(config.block_out_channels)} block_out_channels halves them {len(config.block_out_channels) - 1}"
                f" times: height and width must be divisible by {factor}. "
                f"{data.resize_advice(config.image_size, factor)} Or give fewer --block-out-channels."
            )
        discriminator = None
        if config.discriminator_layers:
            # Under a strategy its BatchNorm takes global-batch statistics, so the step is one device's.
            discriminator = PatchDiscriminator(num_layers=config.discriminator_layers,
                                               synchronized=config.strategy != "default")
            if min(sides) < 2 ** (config.discriminator_layers + 2):
                raise InputError(
                    f"--discriminator-layers {config.discriminator_layers} needs images of at least "
                    f"{2 ** (config.discriminator_layers + 2)} pixels a side, got {sides[0]}x{sides[1]}: use fewer "
                    "discriminator layers, larger --image-size, or --discriminator-layers 0 for no discriminator."
                )
        objective = LatentDiffusionLoss(
            reconstruction_loss=config.reconstruction_loss, kl_weight=config.kl_weight,
            discriminator_start=config.discriminator_start, discriminator_weight=config.discriminator_weight,
        )
        trainer = AutoencoderKLTrainer(autoencoder, objective, discriminator, name=f"{config.model_name}_trainer")
        trainer.build((None, *image_shape))
        return trainer

    def optimizers(self, config):
        """Latent diffusion's Adam(beta_1=0.5, beta_2=0.9), for the autoencoder and for its discriminator."""
        optimizers = [FusedAdam(config.learning_rate, beta_1=0.5, beta_2=0.9) for _ in range(2)]
        return dict(zip(("optimizer", "discriminator_optimizer"), optimizers, strict=True))

    def trained_model(self, model):
        return model.autoencoder

    def binarize(self, config):
        return False

    def tensorboard_callbacks(self, config, log_dir, inputs, image_shape):
        shown = inputs.get("validation", inputs["train"])[:SHOWN_EXAMPLES]
        return [callbacks.SampleImages(log_dir, shown, image_shape, config.image_every, num_samples=0)]

    def shown_examples(self, config):
        return SHOWN_EXAMPLES

    def prior_samples(self, model, image_shape):
        return None


RECIPES = {"mlp": VAERecipe("mlp"), "conv": VAERecipe("conv"), AUTOENCODER_KL: AutoencoderKLRecipe()}


def recipe_for(config):
    """The recipe of `config.model`."""
    return RECIPES[config.model]


def _check_conv_images(image_shape, config):
    """Raises `InputError` unless the convolutional VAE takes images of `image_shape`."""
    if len(image_shape) != 3:
        raise InputError(f"{config.dataset} holds examples of shape {tuple(image_shape)}, not images: --model conv "
                         "needs images [height, width, channels]; use --model mlp for other data.")
    factor = 2 ** len(networks.CONV_FILTERS)
    if image_shape[0] % factor or image_shape[1] % factor:
        raise InputError(
            f"The images are {image_shape[0]}x{image_shape[1]} pixels, but the convolutional VAE halves them "
            f"{len(networks.CONV_FILTERS)} times: height and width must be divisible by {factor}. "
            + data.resize_advice(config.image_size, factor)
        )

