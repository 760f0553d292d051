"""One DSM epoch run eagerly and compiled from the same seeds, for the tests that compare them."""

import warnings

import numpy as np
import torch

from solvers.dsm.train import compiled, epoch_step, loss_function, path_step, training_points


def eager_and_compiled(problem, make_settings, make_net) -> dict[bool, tuple]:
    """{compile: (X, T, losses, the first weights after the update)} for compile False and True;
    ``make_settings(compile)`` and ``make_net(settings)`` build each side afresh. A compiler
    failure (the eager fallback's warning) raises."""
    x0 = torch.as_tensor(problem.sample_initial(8, np.random.default_rng(0)), dtype=torch.float32)
    out = {}
    for mode in (False, True):
        s = make_settings(mode)
        net = make_net(s)
        opt = torch.optim.Adam(net.parameters(), lr=s.lr)
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="dsm: torch.compile")
            step = compiled(path_step(net, problem, problem.T / s.N), mode, "path step")
            X, T = training_points(net, problem, x0, s.N, s.M, torch.Generator().manual_seed(1),
                                   torch.Generator().manual_seed(2), step)
            losses = epoch_step(net, opt, problem, X, T, s, torch.Generator().manual_seed(3),
                                loss_function(net, problem, s))
        out[mode] = (X, T, torch.stack(losses), net.weights[1].detach().clone())
    return out
