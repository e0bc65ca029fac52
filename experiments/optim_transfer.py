"""Move optimizer state between the twins, so a run can continue in the other framework.

Both ``scratch.optim`` and ``torch.optim`` state dicts have the layout
``{"state": {index: {name: value}}, "param_groups": [{..., "params": [index]}]}``
and the same state names (``momentum_buffer``, ``exp_avg``, ``step`` ...). Only
the values differ: NumPy arrays on one side, tensors on the other::

    t_opt = torch.optim.Adam(torch_model.parameters())
    t_opt.load_state_dict(optimizer_state_to_torch(s_opt.state_dict()))

``step`` becomes a float32 0-d tensor, as torch creates it. The scratch
optimizer accepts a torch state dict as it is (it converts tensors itself), or
through ``optimizer_state_to_numpy``.
"""
import copy

import numpy as np
import torch


def optimizer_state_to_torch(state_dict: dict) -> dict:
    """A scratch optimizer's state dict -> one ``torch.optim.Optimizer.load_state_dict`` takes (copies)."""
    state = {k: {name: _to_tensor(name, v) for name, v in s.items()} for k, s in state_dict["state"].items()}
    return {"state": state, "param_groups": copy.deepcopy(state_dict["param_groups"])}


def optimizer_state_to_numpy(state_dict: dict) -> dict:
    """A torch optimizer's state dict -> NumPy arrays (copies), for ``scratch`` or for saving."""
    state = {k: {name: _to_numpy(v) for name, v in s.items()} for k, s in state_dict["state"].items()}
    groups = [{k: _to_numpy(v) if isinstance(v, torch.Tensor) else copy.deepcopy(v) for k, v in g.items()}
              for g in state_dict["param_groups"]]
    return {"state": state, "param_groups": groups}


def _to_tensor(name, value):
    if name == "step":
        return torch.tensor(float(np.asarray(value)), dtype=torch.float32)
    if isinstance(value, np.ndarray):
        return torch.tensor(value)
    return copy.deepcopy(value)


def _to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    return copy.deepcopy(value)
