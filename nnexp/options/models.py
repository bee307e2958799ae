"""The options of nnexp's models (nnexp/models/), checked without torch: each model's constructor calls its
function first, and ``nnexp train`` calls it with the composed ``model`` node before torch is imported.

A function takes exactly the options of its model (not ``input_shape``, ``num_outputs`` and the other facts
nnexp passes at run time; checks that need them stay in the constructor). A combination of options the model
cannot do is a plain ValueError.
"""

from __future__ import annotations

from typing import Any

from nnexp.options import check, check_bool, check_choice, check_int, checks, finite, int_at_least

# activation name -> the torch.nn class that computes it (nnexp/models/__init__.py makes the modules)
ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU"}
MLP_IMPLS = ("torch", "scratch")
# Weight init of the MLP's linear layers (nnexp/models/mlp.py says what each does)
INITS = ("torch", "he", "xavier")
POOLS = {"max": "MaxPool2d", "avg": "AvgPool2d"}  # LeNet-5's subsampling: name -> torch.nn class
FITS = ("pad", "resize")  # how LeNet-5's inputs reach 32x32
CELLS = ("torch", "standard", "seed")  # the LSTM's recurrence: torch.nn.LSTM or nnexp/scratch/lstm.py
RNN_CELLS = ("torch", "scratch")  # the plain RNN's recurrence: torch.nn.RNN or nnexp/scratch/rnn.py


def dropout_rate(dropout: Any) -> None:
    check("dropout", dropout, finite(dropout) and 0 <= dropout < 1, "a number in [0, 1)")


@checks("nnexp.models.mlp.MLP")
def mlp(*, hidden: Any, activation: Any, dropout: Any, residual: Any, impl: Any, init: Any) -> None:
    ok = isinstance(hidden, (list, tuple)) and all(int_at_least(h, 1) for h in hidden)
    check("hidden", hidden, ok, "a list of integers >= 1, e.g. [64,64]")
    check_choice("activation", activation, ACTIVATIONS)
    dropout_rate(dropout)
    check_bool("residual", residual)
    check_choice("impl", impl, MLP_IMPLS)
    check_choice("init", init, INITS)
    if impl == "scratch" and (dropout > 0 or residual):
        what = "dropout > 0" if dropout > 0 else "residual=true"
        raise ValueError(f"impl=scratch (the seed's backpropagation) cannot do {what}; "
                         "use impl=torch, or dropout=0 and residual=false")


@checks("nnexp.models.lenet5.LeNet5")
def lenet5(*, activation: Any, pool: Any, fit: Any, dropout: Any) -> None:
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("pool", pool, POOLS)
    check_choice("fit", fit, FITS)
    dropout_rate(dropout)


@checks("nnexp.models.resnet.ResNet")
def resnet(*, depth: Any, width: Any, skip: Any, activation: Any, dropout: Any) -> None:
    # 6n + 2: n blocks in each of 3 stages, 2 convolutions per block, plus stem and classifier
    check("depth", depth, int_at_least(depth, 8) and (depth - 2) % 6 == 0,
          "6n+2: 8, 14, 20, 32, 44, 56, 110, ...")
    check_int("width", width, 1, "channels of the first stage")
    check_bool("skip", skip)
    check_choice("activation", activation, ACTIVATIONS)
    dropout_rate(dropout)


def _recurrent(hidden_size: Any, num_layers: Any, bidirectional: Any, dropout: Any, cell: Any, embed_dim: Any,
               cells: tuple[str, ...]) -> None:
    check_int("hidden_size", hidden_size, 1)
    check_int("num_layers", num_layers, 1)
    check_bool("bidirectional", bidirectional)
    dropout_rate(dropout)
    check_choice("cell", cell, cells)
    check_int("embed_dim", embed_dim, 1)


@checks("nnexp.models.lstm.LSTM")
def lstm(*, hidden_size: Any, num_layers: Any, bidirectional: Any, dropout: Any, cell: Any,
         embed_dim: Any) -> None:
    _recurrent(hidden_size, num_layers, bidirectional, dropout, cell, embed_dim, CELLS)


@checks("nnexp.models.rnn.RNN")
def rnn(*, hidden_size: Any, num_layers: Any, bidirectional: Any, dropout: Any, cell: Any,
        embed_dim: Any) -> None:
    _recurrent(hidden_size, num_layers, bidirectional, dropout, cell, embed_dim, RNN_CELLS)


@checks("nnexp.models.transformer.Transformer")
def transformer(*, d_model: Any, n_heads: Any, n_layers: Any, d_ff: Any, dropout: Any, activation: Any,
                causal: Any) -> None:
    # even: sinusoidal positions come in (sin, cos) pairs
    check("d_model", d_model, int_at_least(d_model, 2) and d_model % 2 == 0,
          "an even integer >= 2, divisible by n_heads")
    check_int("n_heads", n_heads, 1)
    check_int("n_layers", n_layers, 1)
    check_int("d_ff", d_ff, 1)
    dropout_rate(dropout)
    check_choice("activation", activation, ACTIVATIONS)
    check_bool("causal", causal)
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")


@checks("nnexp.models.perceptron.Perceptron", "nnexp.models.sigmoid_unit.SigmoidUnit")
def no_options() -> None:
    """One unit: nothing to choose (which datasets fit is for the constructor to say, from the data)."""
