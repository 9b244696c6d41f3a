import json

import numpy as np
import torch
import yaml
from transformers import AutoImageProcessor, AutoModelForImageClassification, Trainer

from hf_deeplense.data import LensingCollator
from hf_deeplense.testing_utils import local_hub
from hf_deeplense.training.arguments import LensingTrainingArguments
from hf_deeplense.training.artifacts import finish_run, push_run_to_hub, take_push_to_hub
from hf_deeplense.training.data import DataArguments, load_splits, make_image_processor
from hf_deeplense.training.modeling import build_model

TINY_VIT = {
    "image_size": 16,
    "patch_size": 4,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
}


def test_run_artifacts_written_loaded_and_published(tmp_path, random_lensing_dataset, capsys):
    data_args = DataArguments(dataset=str(random_lensing_dataset))
    splits = load_splits(data_args)
    names = ["no_sub", "cdm", "axion"]
    model = build_model(
        "classification", model_type="deeplense_vit", config_overrides=TINY_VIT, class_names=names
    )
    processor = make_image_processor(data_args, num_channels=1, image_size=16)
    args = LensingTrainingArguments(
        str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=8,
        logging_steps=1,
        disable_tqdm=True,
        push_to_hub=True,
        hub_model_id="org/tiny-run",
    )
    assert take_push_to_hub(args) == "org/tiny-run" and args.push_to_hub is False
    trainer = Trainer(
        model=model, args=args, train_dataset=splits["train"], data_collator=LensingCollator(processor)
    )
    trainer.train()
    trainer.save_model(str(tmp_path / "run" / "checkpoint-2"))  # a checkpoint folder is never published
    with local_hub(tmp_path / "hub") as hub:
        out = finish_run(
            trainer,
            (data_args, args),
            task="image-classification",
            metrics={
                "test_auc_macro": 0.75,
                "test_accuracy": float("nan"),
                "test_runtime": 0.1,
                "eval_loss": 1.0,
            },
            headline=("test AUC", "test_auc_macro"),
            image_processor=processor,
            dataset="org/tiny-data",
            repo_id="org/tiny-run",
        )
        files = hub.list_files("org/tiny-run")
        assert {"model.safetensors", "README.md", "metrics.json", "plots/loss_curves.png"} <= set(files)
        assert not any(name.startswith("checkpoint-") for name in files)
    assert out == tmp_path / "run"
    printed = capsys.readouterr().out
    assert (
        f"\ntest AUC: 0.7500\noutputs: {out}\npublished: https://huggingface.co/org/tiny-run/commit/"
        in printed
    )
    assert (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file()
    assert json.loads((out / "metrics.json").read_text()) == {
        "test_accuracy": None,
        "test_auc_macro": 0.75,
        "test_runtime": 0.1,
        "eval_loss": 1.0,
    }
    assert yaml.safe_load((out / "run_config.yaml").read_text())["dataset"] == str(random_lensing_dataset)
    card = (out / "README.md").read_text()
    assert "plots/loss_curves.png" in card
    # the model-index holds the test metrics (prefix dropped), no timings, no NaN, no eval metrics
    header = yaml.safe_load(card.split("---")[1])
    results = header["model-index"][0]["results"][0]
    assert results["dataset"]["split"] == "test"
    assert {m["type"]: m["value"] for m in results["metrics"]} == {"auc_macro": 0.75}
    assert "hub_token" not in card
    assert (out / "plots" / "loss_curves.png").is_file()

    reloaded = AutoModelForImageClassification.from_pretrained(out)
    pixel_values = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(
        reloaded(pixel_values=pixel_values).logits, model.cpu()(pixel_values=pixel_values).logits
    )

    with local_hub(tmp_path / "hub") as hub:
        push_run_to_hub(out, "org/tiny-run")  # publishing again
        from_hub = AutoModelForImageClassification.from_pretrained("org/tiny-run")
        assert AutoImageProcessor.from_pretrained("org/tiny-run").size == 16
        np.testing.assert_allclose(
            from_hub(pixel_values=pixel_values).logits.detach().numpy(),
            reloaded(pixel_values=pixel_values).logits.detach().numpy(),
        )


def test_card_links_plots_relative_to_the_output_dir(tmp_path, monkeypatch, random_lensing_dataset):
    from hf_deeplense.evaluation.plots import plot_loss_curves

    monkeypatch.chdir(tmp_path)
    data_args = DataArguments(dataset=str(random_lensing_dataset))
    model = build_model(
        "classification", model_type="deeplense_vit", config_overrides=TINY_VIT, class_names=list("abc")
    )
    args = LensingTrainingArguments(
        "outputs/run", max_steps=1, per_device_train_batch_size=4, disable_tqdm=True
    )
    processor = make_image_processor(data_args, num_channels=1, image_size=16)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=load_splits(data_args)["train"],
        data_collator=LensingCollator(processor),
    )
    trainer.train()
    from_cwd = plot_loss_curves([], "outputs/run/plots/a.png")  # relative to the working directory
    plot_loss_curves([], "outputs/run/plots/b.png")
    out = finish_run(
        trainer, (args,), task="image-classification", metrics={}, plots={"a": from_cwd, "b": "plots/b.png"}
    )
    card = (out / "README.md").read_text()
    assert "](plots/a.png)" in card and "](plots/b.png)" in card and "outputs/run/plots" not in card
