"""Pre-train a masked autoencoder (MAE) on lensing images, labels unused.

    python recipes/pretrain_mae.py --config recipes/configs/tiny_mae.yaml --dataset DIR --output_dir outputs/mae
    python recipes/pretrain_mae.py --config recipes/configs/mae_model_ii.yaml --simulate model_ii --output_dir ...

Data: a built dataset folder or Hub/local repo id (`--dataset`), or images simulated on the fly
(`--simulate PRESET`, an endless stream: set `max_steps`). Reconstructions of a fixed validation batch
are drawn at every evaluation (`plots/reconstructions/`, and TensorBoard when it is a tracker). The MAE's
encoder fine-tunes with `recipes/finetune.py --init_from OUTPUT_DIR`.

The work is `hf_deeplense.training.pretrain_mae`; this script runs it and then ends the process group.
"""

from __future__ import annotations

from hf_deeplense.training import end_run, pretrain_mae


def main(args=None) -> dict[str, float]:
    metrics = pretrain_mae(args)
    end_run()  # destroy the process group while Python is fully alive
    return metrics


if __name__ == "__main__":
    main()
