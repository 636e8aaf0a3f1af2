"""Numbers of one trained model: curvature of the loss (Hessian eigenvalues, trace), flatness and
sharpness measures, and the metrics of a landscape surface.

May import landscape, training, models, data and the basics."""
