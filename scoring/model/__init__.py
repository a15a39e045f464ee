"""What a model takes and gives: input schema and validation, transformations, the
explained output, and the layout of explanations."""
