"""Model lifecycle: training, registry, artifacts, explainers and fairness maths."""
