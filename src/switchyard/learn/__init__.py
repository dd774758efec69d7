"""Learned cost-quality routing: datasets, routers, training, evaluation, artifacts.

Submodules are imported explicitly; this package imports nothing heavy on its own.
"""
