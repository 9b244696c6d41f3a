"""`make demo`: the whole workflow on a CPU in about ten minutes, on DeepLense-compatible data.

    python recipes/demo.py --output_dir outputs/demo                 # DeepLense Model II replica
    python recipes/demo.py --preset model_ii --output_dir outputs/demo_physical

1. simulate a small dataset with `hf_deeplense.data.build.build_simulated_dataset`;
2. pre-train a small masked autoencoder on its training images (`recipes/pretrain_mae.py`);
3. fine-tune the MAE encoder as a ViT classifier, selecting the checkpoint on the validation split
   (`recipes/finetune.py --init_from`);
4. evaluate the best checkpoint on the test split, with attention-rollout maps (`recipes/evaluate.py --cam`),
   and print the test macro AUC beside the radial-profile baseline on the same split and the published
   DeepLense figure.

Each training step is one recipe's work (`hf_deeplense.training`), run in this process and printed as it starts
as that recipe's command line, so each can be rerun or scaled up alone.

Presets (`--preset`):
- `deeplense_model_ii` (default): the replica of DeepLense's public Model II files (what DeepLenseSim's code
  made: one fixed macro lens, 25 CDM point masses, a 100-point vortex, no mass compensation, no noise).
  Published DeepLense figures apply to it, and so does their shortcut: substructure mass enlarges the ring,
  so a logistic regression on the radial profile alone separates the classes well. The demo prints that
  baseline; a network learns substructure only by the margin it beats it.
- `model_ii`: the physical Model II preset (randomised lens, compensated mass, Euclid noise) with
  demo-strength substructure (CDM mass slope -0.9, a 1e11 Msun vortex), so that ten CPU minutes learn
  something: it shows how much harder the task is without the ring-size shortcut.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from hf_deeplense import LensImageProcessor
from hf_deeplense.data import load_lensing_dataset
from hf_deeplense.data.build import build_simulated_dataset
from hf_deeplense.evaluation.baselines import radial_profile_baseline_on_dataset
from hf_deeplense.evaluation.study import PUBLISHED
from hf_deeplense.training import end_run, evaluate_checkpoint, finetune, pretrain_mae

RECIPES = Path(__file__).resolve().parent
CONFIGS = RECIPES / "configs"
DEMO_PRESETS = {
    "deeplense_model_ii": {
        "overrides": {},
        "description": "DeepLense-compatible Model II replica (DeepLenseSim's code: fixed lens, no mass compensation)",
        "published": "deeplense_model_ii",  # the key of its figures in hf_deeplense.evaluation.study.PUBLISHED
        "mae_config": CONFIGS / "demo_mae.yaml",
        "finetune_config": CONFIGS / "demo_finetune.yaml",
    },
    "model_ii": {
        "overrides": {"subhalo_mass_slope": -0.9, "vortex_mass": 1e11},
        "description": "physical Model II preset (randomised lens, compensated mass, Euclid noise) with "
        "demo-strength substructure (CDM mass slope -0.9, axion vortex 1e11 Msun)",
        "published": None,
        "mae_config": CONFIGS / "demo_mae_physical.yaml",
        "finetune_config": CONFIGS / "demo_finetune_physical.yaml",
    },
}
DEMO_SEED = 0


RECIPE_WORK = {"pretrain_mae.py": pretrain_mae, "finetune.py": finetune, "evaluate.py": evaluate_checkpoint}


def run_recipe(script: str, *args: str) -> None:
    """Run one recipe's work in this process, echoing the command line that runs the recipe alone."""
    print("\n$ " + shlex.join(["python", f"recipes/{script}", *args]), flush=True)
    RECIPE_WORK[script](list(args))


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output_dir", default="outputs/demo", help="folder for the dataset, runs and plots")
    parser.add_argument("--preset", default="deeplense_model_ii", choices=sorted(DEMO_PRESETS))
    parser.add_argument("--n_per_class", type=int, default=2000, help="images per class")
    parser.add_argument("--mae_config", default=None, help="MAE config (default: the preset's demo config)")
    parser.add_argument("--finetune_config", default=None, help="fine-tuning config (default: the preset's)")
    args = parser.parse_args(argv)
    demo = DEMO_PRESETS[args.preset]
    output_dir = Path(args.output_dir)
    data_dir, mae_dir, model_dir, eval_dir = (
        output_dir / name for name in ("data", "mae", "model", "evaluation")
    )
    timings = {}

    start = time.perf_counter()
    print(
        f"simulating {args.n_per_class} images per class into {data_dir}: {demo['description']} ...",
        flush=True,
    )
    build_simulated_dataset(
        data_dir, args.preset, args.n_per_class, seed=DEMO_SEED, overrides=demo["overrides"]
    )
    timings["dataset"] = time.perf_counter() - start

    start = time.perf_counter()
    run_recipe(
        "pretrain_mae.py",
        *("--config", str(args.mae_config or demo["mae_config"]), "--dataset", str(data_dir)),
        *("--output_dir", str(mae_dir)),
    )
    timings["mae_pretraining"] = time.perf_counter() - start

    start = time.perf_counter()
    run_recipe(
        "finetune.py",
        *("--config", str(args.finetune_config or demo["finetune_config"]), "--dataset", str(data_dir)),
        *("--init_from", str(mae_dir), "--output_dir", str(model_dir)),
    )
    timings["finetuning"] = time.perf_counter() - start

    start = time.perf_counter()
    run_recipe(
        "evaluate.py",
        *("--model", str(model_dir), "--dataset", str(data_dir), "--output_dir", str(eval_dir), "--cam"),
    )
    # the shortcut on the same split: on the images the network sees, and on the stored images
    dataset = load_lensing_dataset(data_dir)
    baseline_seen = radial_profile_baseline_on_dataset(
        dataset, image_processor=LensImageProcessor.from_pretrained(model_dir)
    )
    baseline_stored = radial_profile_baseline_on_dataset(dataset)
    timings["evaluation"] = time.perf_counter() - start

    published = (
        "; ".join(f"{name}: {value}" for name, value in PUBLISHED[demo["published"]] if "AUC axion" in name)
        if demo["published"]
        else None
    )
    metrics = json.loads((eval_dir / "metrics.json").read_text())["metrics"]
    auc = metrics["test_auc_macro"]
    summary = {
        "preset": args.preset,
        "metrics": metrics,
        "radial_profile_baseline": {"model_inputs": baseline_seen, "stored_images": baseline_stored},
        "published": published,
        "seconds": timings,
    }
    (output_dir / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    per_class = ", ".join(
        f"{key.removeprefix('test_auc_')} {value:.3f}"
        for key, value in metrics.items()
        if key.startswith("test_auc_") and key not in ("test_auc_macro", "test_auc_micro")
    )
    print("\n" + "=" * 72)
    print(f"data: {demo['description']}")
    print(f"test macro AUC: {auc:.2f}   (per class: {per_class})")
    print(
        f"radial-profile baseline, same split: {baseline_seen['macro_auc']:.3f} on the model's inputs, "
        f"{baseline_stored['macro_auc']:.3f} on the stored images  (network margin over the shortcut: "
        f"{auc - baseline_seen['macro_auc']:+.3f})"
    )
    if published:
        print(f"published DeepLense Model II (their 30k images per class, GPU): {published}")
    print(
        f"time: {sum(timings.values()) / 60:.1f} min ("
        + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
        + ")"
    )
    print(f"outputs: {output_dir}/")
    print(f"  model (AutoModelForImageClassification / AutoModel): {model_dir}/  (+ README.md model card)")
    print(f"  plots: {model_dir}/plots/, {mae_dir}/plots/, {eval_dir}/plots/")
    print(f"  dataset: {data_dir}/ (README.md dataset card)")
    print("=" * 72)
    end_run()
    return auc


if __name__ == "__main__":
    main()
