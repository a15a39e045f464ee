"""Explanations away from the service: uploaded to MLflow runs (``ExplanationClient``) and
computed for whole tables on Dask (``explain_dataframe``, ``scoring explain --output DIR``).

MLflow and Dask are imported only when used (extras ``scoring[mlflow]``, ``scoring[dask]``).
"""

from scoring.remote.batch import BatchResult, explain_dataframe, explain_to_parquet
from scoring.remote.client import ExplanationClient, ExplanationNotFound

__all__ = ["BatchResult", "ExplanationClient", "ExplanationNotFound", "explain_dataframe",
           "explain_to_parquet"]
