//! Benchmarks for the workspace (criterion benches land with the issue "Fuzzing and benchmarks").
#![forbid(unsafe_code)]
