"""From-scratch references for the course seed's formulas, each checked against torch by ``nnexp check``.

- ``backprop``:   the seed's Backpropagation (no autograd) and an autograd.Function that uses it
- ``lstm``:       the LSTM cell in the seed's form (Jozefowicz et al. 2015) and in torch's standard form
- ``attention``:  scaled dot-product attention and multi-head attention
- ``optim``:      SGD as in the seed's pseudocode, SGD with momentum, Adam
- ``perceptron``: Rosenblatt's rule w <- w + lr (y - y_hat) x

Submodules are imported on use: ``from nnexp.scratch.backprop import backprop``.
"""
