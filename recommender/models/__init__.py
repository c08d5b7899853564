"""The algorithms, one module each with its config, and the registry that lists them."""
