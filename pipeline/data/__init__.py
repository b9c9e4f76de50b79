"""Data sources (MNIST IDX, scikit-learn digits, .npz, image folders), preprocessing and batching."""

from pipeline.data.dataset import Dataset, load_dataset
from pipeline.data.preprocess import Preprocess

__all__ = ["Dataset", "Preprocess", "load_dataset"]
