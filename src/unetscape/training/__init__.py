"""Training one run and what it ends with: the SGD loop, the whole-set evaluation after every
epoch, the run's outcome (finished, diverged, collapsed, not converged) and the training tables.

May import models, data and the basics."""
