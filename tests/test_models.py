"""Models: one registry, and the text models' masks and (in)sensitivity to word order. The CIFAR
ResNets are tested in test_cifar.py, next to the data they read."""

import pytest
import torch

from lstsd_edu.data import TEXTSYNTH_MAX_LEN, load_textsynth
from lstsd_edu.errors import ConfigError
from lstsd_edu.models import MODELS, build_model, masked_mean, padding_mask

SHAPES = {  # an input shape each model is meant for: (channels, length), (channels, h, w), (T, V)
    "mlp": (1, 40),
    "cnn1d": (1, 40),
    "cnn2d": (1, 8, 8),
    "textbag": (TEXTSYNTH_MAX_LEN, 50),
    "textcnn": (TEXTSYNTH_MAX_LEN, 50),
    **{f"resnet{depth}": (3, 32, 32) for depth in (20, 32, 56, 110)},
}


def test_every_registered_model_maps_x_to_logits():
    assert list(MODELS) == list(SHAPES)
    for name, shape in SHAPES.items():
        model = build_model(name, shape, 7, width=4).eval()
        x = torch.randint(0, shape[1], (2, shape[0])) if name.startswith("text") else torch.randn(2, *shape)
        assert model(x).shape == (2, 7), name
    with pytest.raises(ConfigError, match="model must be one of"):
        build_model("transformer", (24, 50), 6)


# ---------------------------------------------------------------------------------------------
# Text models: padding masks, order (in)sensitivity
# ---------------------------------------------------------------------------------------------
def test_padding_mask_and_masked_mean_by_hand():
    keep = padding_mask(torch.tensor([[5, 7, 0], [0, 0, 0]]))
    assert keep.tolist() == [[True, True, False], [False, False, False]]
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]], [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]])  # [2, 3, 2]
    # row 0: (h_0 + h_1) / 2, padding left out; row 1: no real token, so 0 rather than 0 / 0
    torch.testing.assert_close(masked_mean(h, keep), torch.tensor([[2.0, 3.0], [0.0, 0.0]]))


@pytest.fixture(scope="module")
def batch():
    data = load_textsynth(200, 50, seed=3)
    return data, data.train.x[:16]


@pytest.mark.parametrize("name", ["textbag", "textcnn"])
def test_models_ignore_padding(name, batch):
    data, x = batch
    torch.manual_seed(0)
    model = build_model(name, data.input_shape, data.num_classes).eval()
    logits = model(x)
    assert logits.shape == (16, 6) and torch.isfinite(logits).all()
    longer = torch.cat([x, torch.zeros(16, 9, dtype=torch.long)], 1)  # more padding at the end
    torch.testing.assert_close(model(longer), logits)
    torch.testing.assert_close(model(x[:1]), logits[:1], msg="a row does not see its batch")
    empty = model(torch.zeros(2, TEXTSYNTH_MAX_LEN, dtype=torch.long))
    assert torch.isfinite(empty).all(), "an all-padding row still gives finite logits"


def test_bag_ignores_word_order_and_cnn_does_not(batch):
    data, x = batch
    lengths = (x != 0).sum(1)
    shuffled = x.clone()
    g = torch.Generator().manual_seed(0)
    for row, n in enumerate(lengths.tolist()):
        shuffled[row, :n] = x[row, torch.randperm(n, generator=g)]
    torch.manual_seed(0)
    bag = build_model("textbag", data.input_shape, 6).eval()
    cnn = build_model("textcnn", data.input_shape, 6).eval()
    torch.testing.assert_close(bag(shuffled), bag(x))
    assert not torch.allclose(cnn(shuffled), cnn(x))


def test_text_models_are_registered_and_check_their_input_shape():
    assert {"textbag", "textcnn"} <= set(MODELS)
    with pytest.raises(ConfigError, match="input_shape"):
        build_model("textcnn", (1, 8, 8), 10)  # an image shape
