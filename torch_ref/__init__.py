"""The PyTorch twin: the book's models built from torch.nn, with the scratch twin's state-dict keys."""
