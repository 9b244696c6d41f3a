"""Domain adaptation from a labelled source simulation to an unlabelled target domain: source-only vs DANN vs ADDA.

    python recipes/domain_adapt.py --config recipes/configs/domain_adapt_tiny.yaml --output_dir outputs/da
    accelerate launch --multi_gpu --num_processes 2 recipes/domain_adapt.py --config ... --output_dir ...

Source and target are two datasets on disk or on the Hub (`--source_dataset`, `--target_dataset`: folders or
repo ids in the hf_deeplense format, e.g. converted DeepLense folders or `build_sim.py` output: the source's
`train` split is the labelled training set, the target's `train` split is used without its labels, and each
`test` split is labelled for evaluation), or two simulation presets, or one preset with different overrides
(PSF, noise, exposure, pixel scale): e.g. `model_ii` -> `model_iii`, or `lens_finding` -> the same survey with
worse seeing and shallower exposures. A dataset and a preset may be mixed. Any registered classification head
works (`model_type` + `model_config`):
the adaptation aligns its `pooler_output` (see `hf_deeplense.models.domain_adaptation`). Images are
standardised per image (zero mean, unit variance), so a plain flux-scale change is not the shift being
adapted. `results.json` holds the target-test ROC AUC (macro one-vs-rest for more than two classes) of each
method, the source-test AUC of the source-only model, and the losses each `Trainer` logged (`logging_steps`).

The work is `hf_deeplense.training.domain_adaptation.domain_adapt`; this script runs it and then ends the process
group.
"""

from __future__ import annotations

from hf_deeplense.training import domain_adapt, end_run


def main(args=None) -> dict:
    results = domain_adapt(args)
    end_run()  # destroy the process group while Python is fully alive
    return results


if __name__ == "__main__":
    main()
