"""The explanation dashboard's data: bounded views of explained rows, and ICE curves."""

from scoring.dashboard.data import DashboardData
from scoring.dashboard.ice import ice_curve
from scoring.dashboard.source import dashboard_data, explain_dataset, read_explanation_file

__all__ = ["DashboardData", "dashboard_data", "explain_dataset", "ice_curve",
           "read_explanation_file"]
