import matplotlib.image
import torch

from hf_deeplense.evaluation.reconstruction import mae_reconstructions, write_mae_reconstructions
from hf_deeplense.models.mae import DeepLenseMAEConfig, DeepLenseMAEForPreTraining


def _tiny_mae(norm_pix_loss=False):
    config = DeepLenseMAEConfig(
        image_size=16,
        patch_size=4,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        decoder_hidden_size=16,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=19,
        mask_ratio=0.75,
        norm_pix_loss=norm_pix_loss,
    )
    torch.manual_seed(0)
    return DeepLenseMAEForPreTraining(config).eval()


def test_reconstructions_keep_visible_patches_and_mask_three_quarters(tmp_path):
    model = _tiny_mae()
    pixel_values = torch.rand(3, 1, 16, 16) + 1.0  # strictly positive: masked pixels are the zeros
    images, masked, reconstructions = mae_reconstructions(model, pixel_values, seed=1)
    torch.testing.assert_close(images, pixel_values)
    hidden = masked == 0
    assert hidden.float().mean().item() == 0.75
    torch.testing.assert_close(reconstructions[~hidden], pixel_values[~hidden])
    assert not torch.allclose(reconstructions[hidden], pixel_values[hidden])
    # seeded: the same mask again, another seed another mask
    torch.testing.assert_close(mae_reconstructions(model, pixel_values, seed=1)[1], masked)
    assert not torch.equal(mae_reconstructions(model, pixel_values, seed=2)[1], masked)
    path = write_mae_reconstructions(model, pixel_values, tmp_path / "recon.png")
    assert matplotlib.image.imread(path).shape[0] > 100


def test_norm_pix_loss_reconstructions_are_denormalised():
    model = _tiny_mae(norm_pix_loss=True)
    pixel_values = torch.rand(2, 1, 16, 16) * 10 + 100.0
    _, masked, reconstructions = mae_reconstructions(model, pixel_values)
    hidden = masked == 0
    # predictions of ~unit scale are put back on the patch's mean/std scale (~100 here)
    assert reconstructions[hidden].mean() > 50
