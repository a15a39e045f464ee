"""What the tests share (bench/ imports it too): helper processes, servers, saved bundles,
realistic cases, example explainers, the flood client."""
