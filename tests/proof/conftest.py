"""The proof reads the same offline synthesis as the infrastructure tests."""

from tests.infra.conftest import lean, profiles, synthesized

__all__ = ["lean", "profiles", "synthesized"]
