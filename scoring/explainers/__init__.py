"""The Azure-compatible model explainers: TabularExplainer, MimicExplainer and its
surrogates, PFIExplainer."""
