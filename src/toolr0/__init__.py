"""toolr0: Tool-R0 self-play reinforcement learning for tool-calling LLM agents, from zero data.

The method is specified in docs/method.md: a citation "spec §N" anywhere in this package means §N of that file.
"""

__version__ = "0.1.0"
