"""The light explainers on the request path, and the registry of which explains what."""
