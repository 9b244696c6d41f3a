"""hf_deeplense: deep learning on strong gravitational lensing images, the Hugging Face way.

Importing the package registers every DeepLense model, config and image processor with the
transformers Auto classes.
"""

__version__ = "0.1.0"
