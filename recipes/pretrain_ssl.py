"""Self-supervised pre-training of any DeepLense backbone: SimCLR, DINO, BYOL or SimSiam (`model_type`).

    python recipes/pretrain_ssl.py --config recipes/configs/tiny_dino.yaml --dataset DIR --output_dir outputs/dino
    accelerate launch recipes/pretrain_ssl.py --config recipes/configs/dino_model_ii.yaml --dataset DIR \\
        --output_dir outputs/dino_model_ii

The backbone is the `backbone_config` of `model_config` (`deeplense_cnn`, `deeplense_vit`, `deeplense_hybrid`,
`deeplense_equivariant`). Views: `LensingAugment` (D4 rotations/flips, `max_shift`, `noise_std`) on two views of the
whole image, or DINO's multi-crop (`num_local_crops`, `global_crop_scale`, `local_crop_scale`). Data: `--dataset`
(folder or repo id) or `--simulate PRESET` (set `max_steps`). Fine-tune the encoder with
`recipes/finetune.py --init_from OUTPUT_DIR` (add `--linear_probe` for a frozen backbone).

The work is `hf_deeplense.training.pretrain_ssl`; this script runs it and then ends the process group.
"""

from __future__ import annotations

from hf_deeplense.training import end_run, pretrain_ssl


def main(args=None) -> dict[str, float]:
    metrics = pretrain_ssl(args)
    end_run()  # destroy the process group while Python is fully alive
    return metrics


if __name__ == "__main__":
    main()
