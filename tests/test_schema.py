"""Tool-schema normalisation: every form maps to one internal Tool with the union of required keys."""

from hypothesis import given
from hypothesis import strategies as st

from toolr0.core.schema import Task, Tool, ToolCall, normalise_tool, normalise_tools, required_of, tools_json

GEN_FORM = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"city": {"type": "string", "description": "City"}, "unit": {"type": "string", "description": "u"}},
    "required": ["city"],
}
SCHEMA_FORM = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
BFCL_FORM = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "dict", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}, "required": ["city"]},
}
HAMMER_FORM = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"city": {"type": "str", "description": "City", "required": True}, "unit": {"type": "str", "required": False}},
}


def test_every_form_gives_same_names_and_required():
    for raw in (GEN_FORM, SCHEMA_FORM, BFCL_FORM, HAMMER_FORM):
        tool = normalise_tool(raw)
        assert tool is not None
        assert tool.name == "get_weather"
        assert set(tool.properties) == {"city", "unit"}
        assert tool.required == ["city"]
        assert all("required" not in p for p in tool.properties.values())


def test_required_union_of_all_three_places():
    raw = {
        "name": "f",
        "required": ["a"],
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string", "required": True}, "c": {"type": "int"}},
            "required": ["c"],
        },
    }
    assert sorted(required_of(raw)) == ["a", "b", "c"]


def test_json_schema_rendering_and_task_roundtrip():
    tool = normalise_tool(HAMMER_FORM)
    schema = tool.to_json_schema()
    assert schema["parameters"]["type"] == "object"
    assert schema["parameters"]["required"] == ["city"]
    task = Task("Weather in Paris?", [tool], [ToolCall("get_weather", {"city": "Paris"})], "weather")
    again = Task.from_dict(task.to_dict())
    assert again.to_dict() == task.to_dict()
    assert '"get_weather"' in tools_json([tool])


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)))
def test_normalise_never_raises_on_garbage(raw):
    tool = normalise_tool(raw)
    assert tool is None or isinstance(tool, Tool)
    assert isinstance(normalise_tools(raw), list)
