"""Data sources (MNIST IDX, scikit-learn digits, .npz, image folders) opened lazily, preprocessing,
augmentation and streamed batches on ``torch.utils.data``."""

from pipeline.data.dataset import AUGMENT_MODES, Dataset, load_dataset
from pipeline.data.preprocess import Preprocess

__all__ = ["AUGMENT_MODES", "Dataset", "Preprocess", "load_dataset"]
