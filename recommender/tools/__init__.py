"""Tools around the engine: benchmarks, measurements and reliability checks (serving never imports them)."""
