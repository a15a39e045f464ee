"""What is saved and served: the explanation type, scoring explainer files, bundles."""
