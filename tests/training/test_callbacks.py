import json

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from transformers import Trainer
from transformers.modeling_outputs import ImageClassifierOutput

from hf_deeplense.training.arguments import LensingTrainingArguments
from hf_deeplense.training.callbacks import EvalHistoryJsonCallback, ImageLoggingCallback


class TinyClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, pixel_values, labels=None):
        logits = self.linear(pixel_values)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


def _rows(count, seed):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(count, 4, generator=generator)
    return [{"pixel_values": x, "labels": int(x[0] > 0)} for x in features]


def test_eval_history_and_image_callbacks(tmp_path):
    def make_figure(model, path):
        figure, axis = plt.subplots()
        axis.imshow(model.linear.weight.detach().numpy())
        figure.savefig(path)
        plt.close(figure)
        return path

    image_callback = ImageLoggingCallback(make_figure, subdir="recon", name="weights")
    args = LensingTrainingArguments(
        str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=4,
        eval_strategy="steps",
        eval_steps=3,
        logging_steps=1,
        report_to="tensorboard",
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=TinyClassifier(),
        args=args,
        train_dataset=_rows(32, 0),
        eval_dataset=_rows(8, 1),
        callbacks=[EvalHistoryJsonCallback(), image_callback],
    )
    trainer.train()
    history = json.loads((tmp_path / "eval_history.json").read_text())
    assert [entry["step"] for entry in history] == [3, 6]
    assert all(np.isfinite(entry["eval_loss"]) for entry in history)
    assert [p.split("/")[-1] for p in image_callback.paths] == [
        "weights-step0000003.png",
        "weights-step0000006.png",
    ]
    assert all(
        (tmp_path / "recon" / name).is_file()
        for name in ("weights-step0000003.png", "weights-step0000006.png")
    )
    assert list((tmp_path / "runs" / "images").glob("events.out.tfevents*"))
