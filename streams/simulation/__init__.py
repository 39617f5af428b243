"""A synthetic city for the demo, the benchmarks and the tests: an intake stream for a registry,
and simulated responders who answer what minhu dispatches."""
