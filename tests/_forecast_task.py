"""A small forecast task as Generator text and Solver replies, shared by the core tests (parsing, rewards,
verification) that check one behaviour across modules."""

from __future__ import annotations

import json

FORECAST_TOOLS = [
    {
        "name": "get_forecast",
        "description": "Weather forecast for a city: temperature, rain, wind...",
        "parameters": {
            "city": {"type": "string", "description": "City name, e.g. Paris..."},
            "days": {"type": "integer", "description": "Number of days"},
        },
        "required": ["city", "days"],
    }
]
FORECAST_QUESTION = "What will the weather be like in Lyon over the next 3 days? I am planning a hike."
FORECAST_CALLS = [{"name": "get_forecast", "arguments": {"city": "Lyon", "days": 3}}]


def gen_text(
    question=FORECAST_QUESTION,
    tools=FORECAST_TOOLS,
    calls=FORECAST_CALLS,
    think="A forecast task for a hiker.",
):
    """A complete Generator completion (four tags) for the given task."""
    return (
        f"<think>{think}</think>\n<question>{question}</question>\n"
        f"<available_tools>{json.dumps(tools)}</available_tools>\n"
        f"<tool_call_answer>{json.dumps(calls)}</tool_call_answer>"
    )


def solver_out(calls, think="I call the tool."):
    """A reference-format Solver reply making ``calls``."""
    return f"<think>{think}</think>\n<tool_call_answer>{json.dumps(calls)}</tool_call_answer>"
