"""The book's networks, built from scratch.nn. Each has a twin of the same name in torch_ref.models."""
