"""The comparison harness, data, trainers, experiment catalogue, reports and command line."""
