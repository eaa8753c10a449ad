"""Reading a PyMC approximation: layout, moments, draws and the warm start.

Parameter layout per group and model variable, Gaussian moments, draws with their log
densities, and the fixed-draw objective of the warm start. Nothing here builds an
optimizer.
"""
