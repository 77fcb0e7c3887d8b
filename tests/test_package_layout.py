"""The package's shape, checked from its source: layers that import only downwards, private state touched in one
place, and every name users imported from earlier releases still importing."""

import ast
import importlib
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tfvae"
# Lowest first: a module may import its own layer and the layers before it, never one after.
LAYERS = [
    ("foundations", {"tfvae", "tfvae.files", "tfvae.tensor_math", "tfvae.input_checks"}),
    ("data", {"tfvae.data"}),
    ("keras adaptation", {"tfvae._keras"}),
    ("library", {"tfvae.distributions", "tfvae.layers", "tfvae.likelihoods", "tfvae.losses", "tfvae.networks",
                 "tfvae.seeding", "tfvae.vae", "tfvae.model", "tfvae.diagnostics", "tfvae.evaluate",
                 "tfvae.latents", "tfvae.optimizers", "tfvae.tensor_coercible"}),
    ("autoencoders", {"tfvae.autoencoder_kl", "tfvae.autoencoder_kl_cogvideox"}),
    ("serving", {"tfvae.serving", "tfvae.export"}),
    ("run machinery", {"tfvae.run"}),
    ("command", {"tfvae.cli", "tfvae.__main__"}),
]
PRIVATE_MODULES = ("keras.src", "tensorflow.python", "tensorflow_probability.python")


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module):
    """The index in `LAYERS` of the longest prefix of `module` that a layer names."""
    candidates = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
                  if module == prefix or module.startswith(prefix + ".")]
    assert candidates, f"{module} is in no layer: add it to LAYERS"
    return max(candidates)[1]


def imported_modules(tree):
    """Every module `tree` imports (at any depth: function-level imports too), and every `module.name` it imports
    from one; tfvae uses absolute imports only (a test below checks)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"a relative import of {node.module}: tfvae imports absolutely"
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def sources():
    return [(module_name(path), ast.parse(path.read_text())) for path in sorted(PACKAGE.rglob("*.py"))]


def test_no_package_imports_a_higher_one():
    wrong = []
    for module, tree in sources():
        own = layer_of(module)
        for imported in imported_modules(tree):
            if imported.startswith("tfvae.") and imported != "tfvae" and _is_module_or_package(imported):
                if layer_of(imported) > own:
                    wrong.append(f"{module} ({LAYERS[own][0]}) imports {imported} ({LAYERS[layer_of(imported)][0]})")
    assert not wrong, "\n".join(wrong)


def _is_module_or_package(name):
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_only_the_private_keras_package_touches_private_state():
    """Outside `tfvae._keras`: no import of Keras', TensorFlow's or TFP's internal modules, and no private attribute
    (`x._name`) of any object but the module's own classes (`self`, `cls`, `super()`)."""
    wrong = []
    for module, tree in sources():
        if module.startswith("tfvae._keras"):
            continue
        for imported in imported_modules(tree):
            if imported.startswith(PRIVATE_MODULES):
                wrong.append(f"{module} imports {imported}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value
                own = (isinstance(owner, ast.Name) and owner.id in ("self", "cls")) or (
                    isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super")
                if not own:
                    wrong.append(f"{module}:{node.lineno} uses .{node.attr} of {ast.unparse(owner)}")
    assert not wrong, "\n".join(wrong)


def test_every_private_access_in_the_keras_package_says_why_and_where_it_was_checked():
    unmarked = [path.name for path in (PACKAGE / "_keras").glob("*.py")
                if any(marker in path.read_text() for marker in ("._", *PRIVATE_MODULES))
                and "PRIVATE:" not in path.read_text()]
    assert not unmarked, f"these touch private state without saying why (a PRIVATE: comment): {unmarked}"


@pytest.mark.parametrize("name", [
    "tfvae.VAE", "tfvae.AutoencoderKL", "tfvae.DiagonalGaussian", "tfvae.layers.DiagonalGaussianLambda",
    "tfvae.layers.GaussianHead", "tfvae.losses.NegativeLogLikelihood", "tfvae.networks.gaussian_mlp_encoder",
    "tfvae.data.array_batches", "tfvae.data.open_images", "tfvae.export.export_saved_model",
    "tfvae.evaluate.summarize", "tfvae.evaluate.importance_weighted_log_likelihood", "tfvae.latents.encode_dataset",
    "tfvae.autoencoder_kl.AutoencoderKLTrainer", "tfvae.autoencoder_kl.LatentDiffusionLoss",
    "tfvae.autoencoder_kl.PatchDiscriminator", "tfvae.autoencoder_kl.WeightsError", "tfvae.optimizers.FusedAdam",
    "tfvae.model.VAE", "tfvae.likelihoods.get",
])
def test_names_users_imported_from_earlier_releases_still_import(name):
    module, _, attribute = name.rpartition(".")
    assert getattr(importlib.import_module(module), attribute) is not None
