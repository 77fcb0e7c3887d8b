"""SavedModels for TF Serving: export with versions and staging, each model family's signatures, and the files a
TF Serving deployment reads beside them (model config, batching parameters, warm-up requests)."""

from tfvae.serving.export import SignatureChangeError, export_saved_model, write_server_config
from tfvae.serving.model_server import ServingConfigError

__all__ = ["ServingConfigError", "SignatureChangeError", "export_saved_model", "write_server_config"]
