"""Tools around the engine: benchmarks, measurements and reliability checks."""
