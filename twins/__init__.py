"""Pure digital-twin state and its update logic: no clock, broker, store or framework."""
