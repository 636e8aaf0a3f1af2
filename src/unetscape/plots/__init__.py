"""Figures of the workflow; every number drawn comes from a file the workflow wrote."""
