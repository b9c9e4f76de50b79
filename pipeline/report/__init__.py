"""What the report stage measures and writes: the run's variants, their latency, robust accuracy,
the shipped bundle's accuracy on the device, and in-place updates of a finished run's report."""
