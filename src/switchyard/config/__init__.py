"""Configuration: pydantic schema, YAML loader with line numbers, env interpolation."""

from switchyard.config.loader import load_config, load_config_text
from switchyard.config.schema import SwitchyardConfig

__all__ = ["SwitchyardConfig", "load_config", "load_config_text"]
