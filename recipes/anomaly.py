"""Anomaly detection: an MAE trained on the images of one class only (`no_sub`: no substructure); its
reconstruction error (`anomaly_score`) flags the other classes.

    python recipes/anomaly.py --config recipes/configs/tiny_anomaly.yaml --dataset DIR --output_dir outputs/anomaly

Training and validation use `normal_class` only; the test split keeps every class and is scored with the
deterministic `anomaly_score` (every patch reconstructed once from the others). Reported: the AUC of the
score for `normal_class` against all other classes, against each class, and their macro average, with
score histograms, ROC curves and reconstructions in `plots/`.

The work is `hf_deeplense.training.anomaly`; this script runs it and then ends the process group.
"""

from __future__ import annotations

from hf_deeplense.training import anomaly, end_run


def main(args=None) -> dict[str, float]:
    metrics = anomaly(args)
    end_run()  # destroy the process group while Python is fully alive
    return metrics


if __name__ == "__main__":
    main()
