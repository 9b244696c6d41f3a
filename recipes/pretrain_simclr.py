"""Pre-train a SimCLR model (NT-Xent on two augmented views of each image) with any DeepLense backbone.

    python recipes/pretrain_simclr.py --config recipes/configs/tiny_simclr.yaml --dataset DIR --output_dir outputs/simclr

The backbone is the `backbone_config` of `model_config` (`model_type: deeplense_cnn`, `deeplense_vit`,
`deeplense_hybrid`, ...). Views: `LensingAugment` (D4 rotations/flips, `max_shift`, `noise_std`), drawn
independently for each view. Data: `--dataset` (folder or repo id) or `--simulate PRESET` (set
`max_steps`). Fine-tune the backbone with `recipes/finetune.py --init_from OUTPUT_DIR` (add
`--linear_probe` for a frozen backbone).

The work is `hf_deeplense.training.pretrain_ssl` (whose `model_type` defaults to `deeplense_simclr`); this script
runs it and then ends the process group.
"""

from __future__ import annotations

from hf_deeplense.training import end_run, pretrain_ssl


def main(args=None) -> dict[str, float]:
    metrics = pretrain_ssl(args)
    end_run()  # destroy the process group while Python is fully alive
    return metrics


if __name__ == "__main__":
    main()
