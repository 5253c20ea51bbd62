"""How a batch turns rows into requests and answers into results, with no server: templates,
the JSON schema response format, reading answers, and the rows of each kind of input."""

from __future__ import annotations

import pandas
import pydantic
import pytest

from kz_jupyter.batch import result_of, rows_of, slots_of
from kz_jupyter.batch.cache import Answer, AnswerCache, answer_key
from kz_jupyter.batch.requests import BatchSpec
from kz_jupyter.errors import KzError


class Review(pydantic.BaseModel):
    """A structured answer."""

    label: str
    stars: int


def test_a_template_names_what_the_rows_lack_and_how_to_write_braces():
    spec = BatchSpec("m", "Classify {review} for {audience}")
    assert spec.prompt({"review": "great", "audience": "kids"}) == "Classify great for kids"
    with pytest.raises(KzError, match=r"names \{audience\}, which the rows do not have \(they "
                       r"have: review\)"):  # fmt: skip
        spec.prompt({"review": "great"})
    with pytest.raises(KzError, match=r"does not parse .*write \{\{ for a \{"):
        BatchSpec("m", "a { b").prompt({})


def test_a_schema_becomes_the_response_format_and_its_fields_the_columns():
    spec = BatchSpec("m", "{text}", system="Be brief.", schema=Review, parameters={"seed": 1})
    body = spec.body("hello")
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "hello"}]  # fmt: skip
    assert body["seed"] == 1 and body["model"] == "m"
    assert body["response_format"]["json_schema"]["schema"] == Review.model_json_schema()
    assert spec.fields() == ["label", "stars"]
    assert spec.read('{"label": "good", "stars": "4"}') == {"label": "good", "stars": 4}
    with pytest.raises(ValueError):
        spec.read('{"label": "good"}')
    with pytest.raises(KzError, match="give a pydantic model class or a JSON schema dict"):
        BatchSpec("m", "{text}", schema=42).body("x")


def test_a_dict_schema_is_checked_with_jsonschema():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    spec = BatchSpec("m", "{text}", schema=schema)
    assert spec.fields() == ["n"] and spec.read('{"n": 3}') == {"n": 3}
    bad = result_of(spec, Answer(text='{"n": "three"}'))
    assert bad["n"] is None and "does not fit the schema: 'three' is not of type" in bad["error"]
    cut = result_of(spec, Answer(text='{"n": '))
    assert cut["error"].startswith("the answer does not fit the schema")
    failed = result_of(spec, Answer(error="HTTP 503: not ready"))
    assert failed == {"n": None, "error": "HTTP 503: not ready"}


def test_rows_of_each_kind_of_input():
    series = pandas.Series(["a", "b"], index=[10, 20], name="word")
    rows, index = rows_of(series)
    assert rows == [{"text": "a", "word": "a"}, {"text": "b", "word": "b"}]
    assert list(index) == [10, 20]
    frame = pandas.DataFrame({"x": [1], "y": ["z"]})
    assert rows_of(frame)[0] == [{"x": 1, "y": "z"}]
    assert rows_of(["p", {"k": 1}]) == ([{"text": "p"}, {"k": 1}], None)
    assert rows_of(n for n in (1, 2))[0] == [{"text": 1}, {"text": 2}]
    with pytest.raises(KzError, match="a pandas Series or DataFrame, a list or an iterable"):
        rows_of("one string")


def test_slots_are_the_plans_parallel_times_the_serving_replicas():
    up = {"status": "DEPLOYED"}
    assert slots_of({"plan": {"parallel": 4}, "replicas": [up, up]}) == 8
    assert slots_of({"plan": {"parallel": 4}, "replicas": [{"status": "UNLOADED"}]}) == 4
    assert slots_of({"plan": None, "replicas": []}) == 1


def test_answers_are_kept_on_disk_by_model_and_request(tmp_path):
    model = {"deployment": "m", "model": "smollm2", "files": "/x.gguf"}
    key = answer_key(model, {"messages": ["hi"], "temperature": 0})
    assert key != answer_key(model | {"files": "/y.gguf"}, {"messages": ["hi"], "temperature": 0})
    assert key != answer_key(model, {"messages": ["hi"], "temperature": 0.5})
    cache = AnswerCache(tmp_path)
    cache.put(key, Answer("yes", 3, 1))
    cache.close()
    again = AnswerCache(tmp_path)  # another kernel, later
    assert again.get(key) == Answer("yes", 3, 1) and again.get("other") is None
    again.close()
