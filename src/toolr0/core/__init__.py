"""The pure, engine-free core of Tool-R0: schema, specs, prompts, parsing, verification, rewards, matching,
curriculum selection. Nothing here imports torch, transformers or TRL (a test enforces it)."""
