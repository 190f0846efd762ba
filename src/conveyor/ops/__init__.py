"""Host-side operator tools that work against any endpoint, the local stack's or AWS's:
dead letters and redrive, uploads, order traffic, the cost estimate, the diagram and the
OpenAPI document. Never deployed."""
