"""The proof reads the same offline synthesis as the infrastructure tests."""

from tests.infra.conftest import synthesized

__all__ = ["synthesized"]
