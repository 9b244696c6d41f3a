import numpy as np
import pytest

from hf_deeplense.data import lensing_features, write_dataset_card, write_split

CLASS_NAMES = ["no_sub", "cdm", "axion"]


@pytest.fixture(scope="session")
def random_lensing_dataset(tmp_path_factory):
    """A tiny dataset folder in the hf_deeplense format: 1x16x16 random images, 3 classes,
    `log10_m_a` finite for axion rows only; train 30, validation 12, test 12 rows (class-blocked)."""
    out_dir = tmp_path_factory.mktemp("random_lensing_dataset")
    features = lensing_features(CLASS_NAMES, image_shape=(1, 16, 16), float_columns=("log10_m_a",))
    for split, per_class, seed in (("train", 10, 0), ("validation", 4, 1), ("test", 4, 2)):

        def make_shard(index, per_class=per_class, seed=seed):
            rng = np.random.default_rng(seed)
            labels = np.repeat(np.arange(3), per_class)
            log10_m_a = np.where(labels == 2, rng.uniform(-24, -22, size=len(labels)), np.nan)
            images = rng.random((len(labels), 1, 16, 16), dtype=np.float32) * 5 + labels[:, None, None, None]
            return {"pixel_values": images, "label": labels, "log10_m_a": log10_m_a.astype(np.float32)}

        write_split(out_dir, split, 1, make_shard, features, progress=False)
    write_dataset_card(out_dir, title="random test dataset")
    return out_dir
