"""The Shapley value algorithms: masking, Kernel SHAP, permutation walks, exact
enumeration, backgrounds."""
