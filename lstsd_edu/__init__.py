"""lstsd-edu: Long Short-Term Sample Distillation, to read, run and explore.

The pieces, in the order data flows through them:

    config.Config  ->  data.load_dataset  ->  models.build_model  ->  config.build_method
    (buffer.SnapshotBuffer, losses.lstsd_loss)  ->  trainer.Trainer  ->  history DataFrames  ->  plots / widgets

`experiments.train` runs all of it once, `experiments.compare` for several methods and seeds.
In a training loop of your own, `dropin.LSTSDLoss` is the same method as a loss object (and
`lightning.LSTSDCallback` hands it to a PyTorch Lightning module).
"""

from .buffer import SnapshotBuffer, Teachers
from .config import Config, build_method
from .data import Dataset, TensorData, add_label_noise, load_dataset
from .dropin import LSTSDLoss
from .errors import ConfigError
from .losses import lstsd_loss, per_sample_ce, per_sample_kl
from .methods import METHODS, Method, SampleDistillation
from .models import MODELS, build_model
from .trainer import Trainer, get_device, seed_everything

__all__ = [
    "METHODS",
    "MODELS",
    "Config",
    "ConfigError",
    "Dataset",
    "LSTSDLoss",
    "Method",
    "SampleDistillation",
    "SnapshotBuffer",
    "Teachers",
    "TensorData",
    "Trainer",
    "add_label_noise",
    "build_method",
    "build_model",
    "get_device",
    "load_dataset",
    "lstsd_loss",
    "per_sample_ce",
    "per_sample_kl",
    "seed_everything",
]
__version__ = "0.1.0"
