"""toolr0: Tool-R0 self-play reinforcement learning for tool-calling LLM agents, from zero data."""

__version__ = "0.1.0"
