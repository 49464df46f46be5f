"""Attach and infer: learned twins of black-box components from their inputs and outputs.

Pure (no Kafka): :mod:`data` decodes tables into uniform segments,
:mod:`structures` holds the model maths (ARX, grey-box blocks, neural state
space) written once for numpy and torch, :mod:`fitting` fits them,
:mod:`engine` selects by free-run validation error, :mod:`artifact` and
:mod:`report` write the result, :mod:`assembly` links twins, :mod:`fmu`
exports FMI 2.0 co-simulation units, :mod:`generators` makes test data.
"""
