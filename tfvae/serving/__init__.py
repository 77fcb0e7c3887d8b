"""SavedModels for TF Serving: export with versions and staging, and each model family's signatures."""

from tfvae.serving.export import SignatureChangeError, export_saved_model, write_server_config
from tfvae.serving.model_server import ServingConfigError

__all__ = ["ServingConfigError", "SignatureChangeError", "export_saved_model", "write_server_config"]
