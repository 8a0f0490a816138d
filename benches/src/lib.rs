//! Benchmarks of the LRS suite, reported against baselines measured in the same run.
