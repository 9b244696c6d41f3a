"""Evaluate any checkpoint on any lensing dataset: metrics, plots and (with --cam) class-activation maps.

    python recipes/evaluate.py --model outputs/ft --dataset DIR_OR_REPO_ID --output_dir outputs/eval --cam

The work is `hf_deeplense.training.evaluate_checkpoint` (its module docstring says what each task gets); this
script runs it. Writes `metrics.json` and `plots/` to `output_dir`.
"""

from __future__ import annotations

from hf_deeplense.training import evaluate_checkpoint


def main(args=None) -> dict[str, float]:
    return evaluate_checkpoint(args)


if __name__ == "__main__":
    main()
