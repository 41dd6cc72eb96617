"""The registry: divisions, insured persons, employers, designated
institutions, and the working-day calendar."""
