"""Numbers across runs: intervals and tests over seeds, the findings on the poster's claims, rank
correlations of measures with generalisation, and the per-run and per-condition tables.

May import measures, landscape, training, models, data and the basics."""
