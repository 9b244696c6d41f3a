"""Fine-tune a lensing model: classification of the substructure classes or regression of log10 m_a.

    python recipes/finetune.py --config recipes/configs/tiny_finetune.yaml --output_dir outputs/ft
    accelerate launch --multi_gpu --num_processes 2 recipes/finetune.py --config ... --output_dir ...

From scratch (`model_type` + `model_config`) or from a checkpoint (`init_from`: a supervised model, an
MAE, whose encoder loads into the ViT heads, or a SimCLR model); full fine-tuning or a linear probe
(`linear_probe`: frozen backbone in eval mode); `label_fraction` trains on a stratified, seeded fraction
of the labels. The best checkpoint (validation split) is evaluated on the test split; the output folder
holds the model + processor, metrics.json, plots and a model card (docs in hf_deeplense.training.artifacts).

The work is `hf_deeplense.training.finetune`; this script runs it and then ends the process group.
"""

from __future__ import annotations

from hf_deeplense.training import end_run, finetune


def main(args=None) -> dict[str, float]:
    metrics = finetune(args)
    end_run()  # destroy the process group while Python is fully alive
    return metrics


if __name__ == "__main__":
    main()
