"""Models trained elsewhere: scikit-learn pipelines, LightGBM and XGBoost boosters, MLflow.

See :mod:`models.external.base` for what a family provides and the batch it reads.
"""
