"""The book's networks built from torch.nn; each has a twin of the same name in scratch.models."""
