"""DeepLense demo: classify a strong-lensing image and see where the model looks.

A Gradio app that runs locally or as a Hugging Face Space (see `app/README.md`). Load a model directory
written by `save_pretrained` (any DeepLense classification head), then either

- drop in a `.npy` or `.fits` image (`(H, W)`, `(C, H, W)` or `(H, W, C)`), or
- simulate one with `hf_deeplense.simulation`: preset (instrument), class, Einstein radius and seed,

and get the class probabilities, the input image and its class-activation map (Grad-CAM for CNN,
hybrid and equivariant models, attention rollout for ViTs; `hf_deeplense.evaluation.cam`).

    python app/app.py --model outputs/finetune/model --port 7860
    DEEPLENSE_MODEL=org/deeplense-vit python app/app.py       # a Space: the model from an env variable

The logic is in plain functions (`load_model`, `read_image_file`, `simulate_image`, `predict`) that the
tests call without a browser; `build_demo` only wires them to Gradio components.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

try:
    import hf_deeplense  # noqa: F401  (registers the DeepLense models with the Auto classes)
except ImportError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import hf_deeplense  # noqa: F401

from transformers import AutoImageProcessor, AutoModelForImageClassification

from hf_deeplense.evaluation.cam import class_activation_maps
from hf_deeplense.image_processing_lens import LensImageProcessor
from hf_deeplense.simulation import PRESETS, SUBSTRUCTURE_CLASSES, get_preset, simulate_batch

MODEL_ENV = "DEEPLENSE_MODEL"
"""Environment variable naming the model (a local directory or a Hub repo id) when `--model` is not given."""
DEFAULT_MODEL_DIR = "model"
"""Fallback: a `model/` folder next to `app.py` (how a Space ships its weights)."""
DISPLAY_SIZE = 256
"""Images are shown at least this many pixels wide."""
IMAGE_SUFFIXES = (".npy", ".fits", ".fit", ".fits.gz", ".fit.gz")
SIMULATION_PRESETS = tuple(
    name for name, preset in PRESETS.items() if set(preset.classes) <= set(SUBSTRUCTURE_CLASSES)
)
"""Presets whose classes `simulate_batch` draws (the substructure sets; lens finding needs its own simulator)."""


@dataclass
class LoadedModel:
    """A classification model ready for the demo."""

    model: torch.nn.Module
    processor: Any
    class_names: list[str]
    source: str

    @property
    def num_channels(self) -> int:
        return self.model.config.num_channels


def load_model(model: str | os.PathLike) -> LoadedModel:
    """Load a DeepLense classification head and its image processor from a directory (or a Hub repo id).

    Without a saved `preprocessor_config.json`, a `LensImageProcessor` matching the model's channels and
    image size (per-image min-max normalisation) is used.
    """
    source = str(model)
    if os.path.exists(source) and not os.path.isfile(os.path.join(source, "config.json")):
        raise FileNotFoundError(f"{source}: no config.json; pass a directory written by save_pretrained")
    classifier = AutoModelForImageClassification.from_pretrained(source).eval()
    config = classifier.config
    try:
        processor = AutoImageProcessor.from_pretrained(source)
    except OSError:  # no preprocessor_config.json next to the weights
        processor = LensImageProcessor(num_channels=config.num_channels, size=config.image_size)
    class_names = [str(config.id2label[index]) for index in range(config.num_labels)]
    return LoadedModel(model=classifier, processor=processor, class_names=class_names, source=source)


def read_image_file(path: str | os.PathLike) -> np.ndarray:
    """A lensing image from `.npy` (numeric arrays only: no pickle) or FITS (the first HDU with data).

    Returns a float32 array `(H, W)`, `(C, H, W)` or `(H, W, C)` (size-1 axes squeezed).
    """
    path = Path(path)
    name = path.name.lower()
    if not name.endswith(IMAGE_SUFFIXES):
        raise ValueError(f"{path.name}: unsupported file type; use one of {', '.join(IMAGE_SUFFIXES)}")
    if name.endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:  # DeepLense Model II-IV files are object arrays [image, mass]
            raise ValueError(
                f"{path.name}: a pickled object array (e.g. DeepLense's [image, axion mass] files); convert the "
                "data set with hf_deeplense.data (pickle is an explicit opt-in there)"
            ) from error
    else:
        from astropy.io import fits

        with fits.open(path, memmap=False) as hdus:
            array = next((hdu.data for hdu in hdus if hdu.data is not None), None)
        if array is None:
            raise ValueError(f"{path.name}: no image data in any FITS HDU")
    array = np.squeeze(np.asarray(array, dtype=np.float32))
    if array.ndim not in (2, 3):
        raise ValueError(
            f"{path.name}: expected an image (H, W) or (C, H, W) / (H, W, C), got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{path.name}: the image has NaN or infinite pixels")
    return array


def simulate_image(
    preset: str, class_name: str, theta_e: float, seed: int = 0, image_size: int | None = None
) -> tuple[np.ndarray, dict[str, float]]:
    """Simulate one image of `class_name` with the preset's instrument and a fixed Einstein radius.

    Args:
        preset: a substructure preset (`model_i`, `model_ii`, `model_iii`, `model_ab`).
        class_name: one of the preset's classes.
        theta_e: Einstein radius of the lens. *Unit: arcsec*
        seed: everything else (ellipticity, shear, source, subhalos, noise) is drawn from this seed.
        image_size: override the preset's size in pixels (None: the preset's).

    Returns:
        The image `(C, H, W)` in e-/s per pixel and its simulation parameters.
    """
    if preset not in SIMULATION_PRESETS:
        raise ValueError(f"preset {preset!r} cannot be simulated here; choose one of {SIMULATION_PRESETS}")
    overrides: dict[str, Any] = {"theta_e_range": (float(theta_e), float(theta_e))}
    if image_size:
        overrides["image_size"] = int(image_size)
    config = get_preset(preset, **overrides)
    if class_name not in config.classes:
        raise ValueError(
            f"class {class_name!r} is not in preset {preset!r} (classes: {list(config.classes)})"
        )
    output = simulate_batch(config, class_name, [0], seed=int(seed))
    params = {name: float(values[0]) for name, values in output["params"].items()}
    return output["images"][0].numpy(), params


def to_display(image: np.ndarray) -> np.ndarray:
    """`(C, H, W)` -> `(H, W, 3)` uint8: one channel as grey, three as RGB (i, r, g -> R, G, B), min-max scaled."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape[0] == 3:
        rgb = np.moveaxis(image[::-1], 0, -1)  # bluest band first in the data: reverse to R, G, B
    else:
        rgb = np.repeat(image.mean(axis=0)[..., None], 3, axis=-1)
    low, high = float(rgb.min()), float(rgb.max())
    scaled = (rgb - low) / (high - low) if high > low else np.zeros_like(rgb)
    return (scaled * 255).round().astype(np.uint8)


def overlay_cam(display: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a `(H, W)` map in [0, 1] (inferno colour map) over a `(H, W, 3)` uint8 image."""
    from matplotlib import colormaps

    heat = colormaps["inferno"](np.clip(cam, 0.0, 1.0))[..., :3]  # (H, W, 3) in [0, 1]
    blended = (1 - alpha) * display.astype(np.float32) / 255 + alpha * heat
    return (blended * 255).round().astype(np.uint8)


def predict(loaded: LoadedModel, image: np.ndarray) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Class probabilities, the processed input and its class-activation overlay for one image.

    Returns:
        `{class name: probability}` (sums to 1), the model input as `(H, W, 3)` uint8, and the CAM overlay
        `(H, W, 3)` uint8 (Grad-CAM of the predicted class, or attention rollout).
    """
    pixel_values = loaded.processor(image, return_tensors="pt")["pixel_values"]  # (1, C, H, W)
    with torch.no_grad():
        logits = loaded.model(pixel_values=pixel_values).logits
    probabilities = torch.softmax(logits.float(), dim=-1)[0]
    cam = class_activation_maps(loaded.model, pixel_values)[0].cpu().numpy()  # (H, W) in [0, 1]
    display = to_display(pixel_values[0].numpy())
    overlay = overlay_cam(display, cam)
    # nearest-neighbour upscaling to >= 256 px: a 64 px image is a thumbnail in the browser otherwise
    zoom = max(1, -(-DISPLAY_SIZE // display.shape[0]))
    display, overlay = (
        np.kron(array, np.ones((zoom, zoom, 1), dtype=np.uint8)) for array in (display, overlay)
    )
    scores = {name: float(probability) for name, probability in zip(loaded.class_names, probabilities)}
    return scores, display, overlay


def describe(params: dict[str, float]) -> str:
    keys = ("theta_e", "q", "gamma1", "gamma2", "source_x", "source_y", "log10_m_a", "subhalo_mass_fraction")
    rows = [f"| {key} | {params[key]:.4g} |" for key in keys if key in params and np.isfinite(params[key])]
    return "| parameter | value |\n|---|---|\n" + "\n".join(rows)


def build_demo(loaded: LoadedModel):
    """The Gradio Blocks UI around `predict`, `simulate_image` and `read_image_file`."""
    import gradio as gr

    default_preset = "model_ii" if "model_ii" in SIMULATION_PRESETS else SIMULATION_PRESETS[0]

    def classes_of(preset: str) -> list[str]:
        return list(PRESETS[preset].classes)

    def on_simulate(preset, class_name, theta_e, seed):
        image, params = simulate_image(preset, class_name, theta_e, int(seed))
        scores, display, overlay = predict(loaded, image)
        return scores, display, overlay, describe(params)

    def on_file(file):
        if file is None:
            raise gr.Error("drop a .npy or .fits file first")
        try:
            image = read_image_file(file if isinstance(file, str) else file.name)
            scores, display, overlay = predict(loaded, image)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        return scores, display, overlay, f"`{Path(str(file)).name}`: shape {tuple(image.shape)}"

    def on_preset(preset):
        choices = classes_of(preset)
        return gr.Dropdown(choices=choices, value=choices[0])

    with gr.Blocks(title="DeepLense demo") as demo:
        gr.Markdown(
            f"# DeepLense: dark-matter substructure in strong lenses\nModel: `{loaded.source}` "
            f"({type(loaded.model).__name__}, classes: {', '.join(loaded.class_names)})"
        )
        with gr.Row():
            with gr.Column():
                with gr.Tab("Simulate"):
                    preset = gr.Dropdown(
                        list(SIMULATION_PRESETS), value=default_preset, label="Preset (instrument)"
                    )
                    class_name = gr.Dropdown(
                        classes_of(default_preset), value=classes_of(default_preset)[0], label="Class"
                    )
                    theta_e = gr.Slider(0.5, 2.0, value=1.2, step=0.05, label="Einstein radius θ_E (arcsec)")
                    seed = gr.Slider(0, 9999, value=0, step=1, label="Seed")
                    simulate_button = gr.Button("Simulate", variant="primary", elem_id="simulate")
                with gr.Tab("Upload"):
                    file = gr.File(label="Lensing image (.npy / .fits)", file_types=list(IMAGE_SUFFIXES))
                    file_button = gr.Button("Classify file", elem_id="classify-file")
                details = gr.Markdown(elem_id="details")
            with gr.Column():
                label = gr.Label(
                    num_top_classes=len(loaded.class_names), label="Class probabilities", elem_id="probs"
                )
                with gr.Row():
                    input_image = gr.Image(label="Input (model view)", type="numpy", elem_id="input-image")
                    overlay_image = gr.Image(label="Class-activation map", type="numpy", elem_id="cam-image")
        outputs = [label, input_image, overlay_image, details]
        preset.change(on_preset, inputs=preset, outputs=class_name)
        simulate_button.click(on_simulate, inputs=[preset, class_name, theta_e, seed], outputs=outputs)
        file_button.click(on_file, inputs=file, outputs=outputs)
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        default=os.environ.get(MODEL_ENV, str(Path(__file__).resolve().parent / DEFAULT_MODEL_DIR)),
        help=f"model directory or Hub repo id (default: ${MODEL_ENV}, else app/{DEFAULT_MODEL_DIR})",
    )
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args(argv)
    demo = build_demo(load_model(args.model))
    demo.launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
