"""Shared model tester: every architecture registered by hf_deeplense runs through the same checks.

A per-model test module (`tests/models/test_<arch>.py`) declares

```python
from test_modeling_common import ModelTesterMixin

class TestDeepLenseFooModel(ModelTesterMixin):
    config_class = DeepLenseFooConfig
    invalid_config_kwargs = [({"image_size": 30, "patch_size": 7}, "image_size")]

    def get_config(self, num_channels=1, image_size=None):
        return DeepLenseFooConfig(num_channels=num_channels, image_size=image_size or 30, hidden_size=32, ...)
```

and the mixin tests every head of the architecture's `ModelRegistration` (from `hf_deeplense.MODEL_REGISTRY`):
config round trips and validation, save/load and Auto-class resolution, remote code without the package,
output shapes (1 and 3 channels, 64 and 150 px), gradient flow, determinism and one training step.
Heads served by `AutoModelForPreTraining` need `check_pretraining_output` (and `prepare_inputs` when
their forward is stochastic). `test_every_registered_model_has_a_tester` (below) fails when a registered
architecture has no tester class.
"""

from __future__ import annotations

import importlib
import json
import os
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from transformers import AutoConfig, PreTrainedConfig, PreTrainedModel

import hf_deeplense
from hf_deeplense.models import AUTO_CLASSES, MODEL_REGISTRY, ModelRegistration

TESTS_DIR = Path(__file__).parent


def output_tensors(output) -> list[torch.Tensor]:
    """Every tensor of a model output (nested tuples flattened), in order."""
    values = output.to_tuple() if hasattr(output, "to_tuple") else output
    tensors = []
    for value in values:
        if isinstance(value, torch.Tensor):
            tensors.append(value)
        elif isinstance(value, (tuple, list)):
            tensors.extend(output_tensors(value))
    return tensors


def assert_outputs_equal(first, second, atol: float = 1e-6) -> None:
    first_tensors, second_tensors = output_tensors(first), output_tensors(second)
    assert len(first_tensors) == len(second_tensors)
    for first_tensor, second_tensor in zip(first_tensors, second_tensors):
        torch.testing.assert_close(first_tensor, second_tensor, atol=atol, rtol=0)


# Run in the interpreter where `import hf_deeplense` fails (the `fresh_python` fixture): loads every Auto class
# listed in the saved `auto_map` with trust_remote_code=True and saves each model's output on the given inputs.
REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import transformers
    from transformers import AutoConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    model_dir, inputs_path, outputs_path = sys.argv[1:4]
    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=True)
    assert type(config).__module__.startswith("transformers_modules"), type(config).__module__
    inputs = torch.load(inputs_path)
    outputs = {}
    for auto_name, reference in config.auto_map.items():
        if auto_name == "AutoConfig":
            continue
        if hasattr(transformers, auto_name):
            model = getattr(transformers, auto_name).from_pretrained(model_dir, trust_remote_code=True)
        else:  # AutoModelForLensRegression lives in hf_deeplense: load the class named in auto_map
            model = get_class_from_dynamic_module(reference, model_dir).from_pretrained(model_dir)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert type(model).__name__ == reference.split(".")[-1], (type(model).__name__, reference)
        with torch.no_grad():
            output = model.eval()(**inputs[auto_name])
        outputs[auto_name] = [value for value in output.to_tuple() if isinstance(value, torch.Tensor)]
    torch.save(outputs, outputs_path)
    """
)


class ModelTesterMixin:
    """Base of the per-architecture test classes (see the module docstring)."""

    config_class: ClassVar[type[PreTrainedConfig]]
    # (kwargs, name of the field the ValueError must name)
    invalid_config_kwargs: ClassVar[list[tuple[dict[str, Any], str]]] = []
    batch_size: ClassVar[int] = 2
    # True when `get_cam_target_layer()` must return a module (CNN, hybrid); False when it returns None (ViT).
    has_cam_target_layer: ClassVar[bool] = False

    # ----------------------------------------------------------------------------------------- hooks
    def get_config(self, num_channels: int = 1, image_size: int | None = None) -> PreTrainedConfig:
        """A tiny config (odd sizes); `image_size=None` is the model's small test size."""
        raise NotImplementedError

    def prepare_inputs(
        self, auto_name: str, config: PreTrainedConfig, labels: bool = False
    ) -> dict[str, Any]:
        """Seeded inputs for the head served by `auto_name`; with labels when `labels` and the head takes them."""
        generator = torch.Generator().manual_seed(0)
        pixel_values = torch.randn(
            self.batch_size, config.num_channels, config.image_size, config.image_size, generator=generator
        )
        inputs: dict[str, Any] = {"pixel_values": pixel_values}
        if labels and auto_name == "AutoModelForImageClassification":
            inputs["labels"] = torch.randint(0, config.num_labels, (self.batch_size,), generator=generator)
        elif labels and auto_name == "AutoModelForLensRegression":
            inputs["labels"] = torch.randn(self.batch_size, config.num_targets, generator=generator)
        return inputs

    def check_pretraining_output(self, output, config: PreTrainedConfig, inputs: dict[str, Any]) -> None:
        """Shape checks of the `AutoModelForPreTraining` head's output (architectures with such a head)."""
        raise NotImplementedError(f"{type(self).__name__} must implement check_pretraining_output")

    def training_loss(self, auto_name: str, output) -> torch.Tensor:
        """The scalar that the gradient test back-propagates (the loss; a sum of the outputs for `AutoModel`)."""
        if output.get("loss") is not None:
            return output.loss
        return sum(
            tensor.float().pow(2).mean() for tensor in output_tensors(output) if tensor.is_floating_point()
        )

    # -------------------------------------------------------------------------------------- helpers
    @property
    def registration(self) -> ModelRegistration:
        for registration in MODEL_REGISTRY:
            if registration.config_class is self.config_class:
                return registration
        raise AssertionError(f"{self.config_class.__name__} is not in hf_deeplense.MODEL_REGISTRY")

    def build(
        self, model_class: type[PreTrainedModel], config: PreTrainedConfig, seed: int = 0
    ) -> PreTrainedModel:
        torch.manual_seed(seed)
        return model_class(config)

    def check_output_shapes(
        self, auto_name: str, output, config: PreTrainedConfig, inputs: dict[str, Any]
    ) -> None:
        batch_size = inputs["pixel_values"].shape[0]
        if auto_name == "AutoModel":
            assert output.last_hidden_state.shape[0] == batch_size
            assert output.pooler_output.ndim == 2 and output.pooler_output.shape[0] == batch_size
        elif auto_name == "AutoModelForImageClassification":
            assert output.logits.shape == (batch_size, config.num_labels)
        elif auto_name == "AutoModelForLensRegression":
            assert output.logits.shape == (batch_size, config.num_targets)
        elif auto_name == "AutoModelForPreTraining":
            self.check_pretraining_output(output, config, inputs)
        else:
            raise AssertionError(f"no shape check for {auto_name}")
        for tensor in output_tensors(output):
            assert torch.isfinite(tensor).all()

    # ---------------------------------------------------------------------------------------- tests
    def test_config_defaults_build(self):
        config = AutoConfig.for_model(self.config_class.model_type)
        assert type(config) is self.config_class
        assert config.num_channels == 1
        assert self.config_class().to_dict() == config.to_dict()

    def test_config_round_trip(self, tmp_path):
        config = self.get_config()
        as_dict = config.to_dict()
        assert self.config_class.from_dict(as_dict).to_dict() == as_dict
        config.save_pretrained(tmp_path)
        assert json.loads((tmp_path / "config.json").read_text())["auto_map"]["AutoConfig"].endswith(
            self.config_class.__name__
        )
        loaded = AutoConfig.from_pretrained(tmp_path)
        assert type(loaded) is self.config_class
        ignored = ("_name_or_path", "auto_map")  # set by loading / saving
        expected = {key: value for key, value in as_dict.items() if key not in ignored}
        assert {key: value for key, value in loaded.to_dict().items() if key not in ignored} == expected

    def test_invalid_config_raises(self):
        assert self.invalid_config_kwargs, "give at least one invalid config"
        for kwargs, field_name in self.invalid_config_kwargs:
            with pytest.raises(ValueError, match=field_name):
                self.config_class(**kwargs)

    def test_auto_classes_resolve(self):
        config = self.get_config()
        assert type(AutoConfig.for_model(config.model_type)) is self.config_class
        for auto_name, model_class in self.registration.auto_classes().items():
            model = AUTO_CLASSES[auto_name].from_config(config)
            assert type(model) is model_class, auto_name
            assert model_class.config_class is self.config_class
        assert hf_deeplense.AutoModelForLensRegression is AUTO_CLASSES["AutoModelForLensRegression"]

    def test_save_load_identical_outputs(self, tmp_path):
        """Each head: save_pretrained -> safetensors + code files; Auto-class from_pretrained (no trust_remote_code)
        gives the same class and the same outputs."""
        config = self.get_config()
        for auto_name, model_class in self.registration.auto_classes().items():
            model = self.build(model_class, config).eval()
            inputs = self.prepare_inputs(auto_name, config)
            with torch.no_grad():
                expected = model(**inputs)
            save_dir = tmp_path / auto_name
            model.save_pretrained(save_dir)
            saved_files = set(os.listdir(save_dir))
            assert "model.safetensors" in saved_files
            assert {f"{model_class.__module__.rsplit('.', 1)[-1]}.py", "config.json"} <= saved_files
            auto_map = json.loads((save_dir / "config.json").read_text())["auto_map"]
            assert auto_map == self.registration.auto_map()
            loaded = AUTO_CLASSES[auto_name].from_pretrained(save_dir).eval()
            assert type(loaded) is model_class
            with torch.no_grad():
                assert_outputs_equal(loaded(**inputs), expected)

    @pytest.mark.parametrize("class_names", [["a", "b"], ["a", "b", "c", "d"]], ids=["2", "4"])
    def test_a_classifier_of_any_number_of_classes_loads_back(self, tmp_path, class_names):
        """config.json keeps the classes as `id2label` only: loading must not fall back to the default count."""
        classifier_class = self.registration.image_classification_class
        if classifier_class is None:
            pytest.skip("no classification head")
        labels = {
            "id2label": dict(enumerate(class_names)),
            "label2id": {n: i for i, n in enumerate(class_names)},
        }
        config = self.config_class.from_dict({**self.get_config().to_dict(), **labels})
        self.build(classifier_class, config).save_pretrained(tmp_path)
        loaded = AUTO_CLASSES["AutoModelForImageClassification"].from_pretrained(tmp_path)
        assert loaded.config.id2label == dict(enumerate(class_names))
        inputs = self.prepare_inputs("AutoModelForImageClassification", loaded.config)
        assert loaded(**inputs).logits.shape[-1] == len(class_names)

    @pytest.mark.slow
    def test_remote_code_without_package(self, tmp_path, fresh_python):
        """One saved directory per architecture loads through every Auto class in its auto_map with
        trust_remote_code=True in a Python where hf_deeplense cannot be imported."""
        config = self.get_config()
        auto_classes = self.registration.auto_classes()
        # Save the head with the most parameters first: every other head loads (a subset of) its weights. A
        # pre-training model (MAE, SimCLR, DINO, ...) holds the encoder its heads fine-tune: the heads load from it.
        if "AutoModelForPreTraining" in auto_classes:
            saved_name = "AutoModelForPreTraining"
        elif len(auto_classes) > 1:
            saved_name = next(name for name in auto_classes if name != "AutoModel")
        else:
            saved_name = "AutoModel"
        model = self.build(auto_classes[saved_name], config).eval()
        model_dir = fresh_python.unique_dir(tmp_path, "model")
        model.save_pretrained(model_dir)
        inputs = {name: self.prepare_inputs(name, config) for name in auto_classes}
        expected = {}
        for auto_name in auto_classes:
            local = AUTO_CLASSES[auto_name].from_pretrained(model_dir).eval()
            with torch.no_grad():
                expected[auto_name] = output_tensors(local(**inputs[auto_name]))
        torch.save(inputs, tmp_path / "inputs.pt")
        fresh_python.run(REMOTE_CODE_SCRIPT, model_dir, "inputs.pt", "outputs.pt", cwd=tmp_path)
        remote = torch.load(tmp_path / "outputs.pt")
        assert set(remote) == set(auto_classes)
        for auto_name, tensors in remote.items():
            # Heads whose weights are not in the directory (e.g. a fresh classifier) are randomly initialised:
            # compare only heads whose weights were all saved (the saved one and the base model).
            if auto_name in (saved_name, "AutoModel"):
                assert len(tensors) == len(expected[auto_name])
                for remote_tensor, local_tensor in zip(tensors, expected[auto_name]):
                    torch.testing.assert_close(remote_tensor, local_tensor, atol=1e-6, rtol=0)

    @pytest.mark.parametrize("num_channels", [1, 3])
    @pytest.mark.parametrize("image_size", [64, 150])
    def test_output_shapes(self, num_channels, image_size):
        config = self.get_config(num_channels=num_channels, image_size=image_size)
        assert config.num_channels == num_channels and config.image_size == image_size
        for auto_name, model_class in self.registration.auto_classes().items():
            model = self.build(model_class, config).eval()
            inputs = self.prepare_inputs(auto_name, config)
            with torch.no_grad():
                output = model(**inputs)
            self.check_output_shapes(auto_name, output, config, inputs)

    def test_return_dict_false_gives_the_same_tensors(self):
        """`return_dict=False` (in the config, as `from_pretrained(..., return_dict=False)` sets it, or as a
        forward argument) gives a tuple holding the tensors of the `ModelOutput`, in order."""
        config = self.get_config()
        for auto_name, model_class in self.registration.auto_classes().items():
            model = self.build(model_class, config).eval()
            inputs = self.prepare_inputs(auto_name, config, labels=True)
            with torch.no_grad():
                expected = model(**inputs)
                as_argument = model(**inputs, return_dict=False)
                for module in model.modules():  # nested models (SimCLR's backbone) have configs of their own
                    if isinstance(module, PreTrainedModel):
                        module.config.return_dict = False
                from_config = model(**inputs)
            for output in (as_argument, from_config):
                assert isinstance(output, tuple), (model_class.__name__, type(output))
                assert_outputs_equal(output, expected, atol=0)

    def test_every_parameter_gets_gradient(self):
        config = self.get_config()
        for auto_name, model_class in self.registration.auto_classes().items():
            model = self.build(model_class, config).train()
            self.training_loss(
                auto_name, model(**self.prepare_inputs(auto_name, config, labels=True))
            ).backward()
            missing = [
                name
                for name, parameter in model.named_parameters()
                if parameter.requires_grad
                and (parameter.grad is None or not torch.isfinite(parameter.grad).all())
            ]
            assert not missing, f"{model_class.__name__}: no gradient for {missing}"
            assert any(
                parameter.grad.abs().sum() > 0 for parameter in model.parameters() if parameter.requires_grad
            )

    def test_determinism(self):
        config = self.get_config()
        for auto_name, model_class in self.registration.auto_classes().items():
            first, second = self.build(model_class, config).eval(), self.build(model_class, config).eval()
            inputs = self.prepare_inputs(auto_name, config, labels=True)
            with torch.no_grad():
                first_output = first(**inputs)
                assert_outputs_equal(first_output, second(**inputs), atol=0)
                assert_outputs_equal(first_output, first(**inputs), atol=0)

    def test_optimizer_step_lowers_loss(self):
        config = self.get_config()
        for auto_name, model_class in self.registration.auto_classes().items():
            if auto_name == "AutoModel":
                continue
            model = self.build(model_class, config).train()
            inputs = self.prepare_inputs(auto_name, config, labels=True)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            loss_before = model(**inputs).loss
            loss_before.backward()
            optimizer.step()
            with torch.no_grad():
                loss_after = model(**inputs).loss
            assert loss_after < loss_before, (model_class.__name__, loss_before.item(), loss_after.item())

    def test_cam_target_layer(self):
        config = self.get_config()
        for model_class in self.registration.auto_classes().values():
            layer = self.build(model_class, config).get_cam_target_layer()
            if self.has_cam_target_layer:
                assert isinstance(layer, torch.nn.Module)
            else:
                assert layer is None


def test_every_registered_model_has_a_tester():
    """New architectures cannot skip the shared tester: each registered config needs a ModelTesterMixin class."""
    tested = set()
    for path in sorted(TESTS_DIR.glob("test_*.py")):
        module = importlib.import_module(path.stem)  # the name pytest (rootdir import mode) gives the module
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, ModelTesterMixin)
                and value is not ModelTesterMixin
            ):
                tested.add(value.config_class)
    untested = [
        registration.model_type for registration in MODEL_REGISTRY if registration.config_class not in tested
    ]
    assert not untested, f"no ModelTesterMixin test class for {untested}"


def test_registry_entries_are_consistent():
    model_types = [registration.model_type for registration in MODEL_REGISTRY]
    assert len(model_types) == len(set(model_types))
    for registration in MODEL_REGISTRY:
        assert registration.model_type.startswith("deeplense_")
        assert AutoConfig.for_model(registration.model_type).__class__ is registration.config_class
        first_auto_name = {}  # a class serving several Auto classes (SimCLR) is named after the first
        for auto_name, model_class in registration.auto_classes().items():
            first_auto_name.setdefault(model_class, auto_name)
            assert model_class._auto_class == first_auto_name[model_class]
            assert model_class._auto_map == registration.auto_map()
            assert hasattr(model_class, "get_cam_target_layer")
