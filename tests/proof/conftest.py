"""The proof reads the same offline synthesis as the infrastructure tests."""

from tests.infra.conftest import canaried, lean, profiles, synthesized

__all__ = ["canaried", "lean", "profiles", "synthesized"]
