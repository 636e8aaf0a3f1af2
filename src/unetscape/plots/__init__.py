"""Figures of the workflow; every number drawn comes from a file the workflow wrote.

May import analysis, measures, landscape, training, models, data and the basics."""
