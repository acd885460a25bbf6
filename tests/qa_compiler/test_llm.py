import socket
import time

import numpy as np
import pytest

from recon4d.errors import ShapeError
from tests.qa_compiler.conftest import ChatServer
from recon4d.qa_compiler.llm import (
    InvalidReply,
    LLMConfig,
    LLMError,
    build_prompt,
    generate_llm_question,
    parse_reply,
    time_labels,
)

PERSON = "person with initial bounding box coordinates [10, 20, 110, 220]"
DOG = "dog with initial bounding box coordinates [300, 40, 380, 120]"
TIMES = [0.5, 1.0, 1.5]
TRAJECTORIES = [[[2.0, 0.5, 0.0], [1.5, 0.25, 0.0], [1.0, -0.004, 0.001]],
                [[3.0, -1.0, 0.2], [3.0, -0.5, 0.2], [3.25, 0.0, 0.2]]]

VALID = f"""
Which object ends up closer to the observer, {PERSON} or {DOG}?
A. The {PERSON}.
B. The {DOG}.
C. Both end up equally close.
D. Neither moves.
A
"""
INVALID = "Sure! Here is a question:\nWhat happens?\nA. this\nB. that"


def config_for(server: ChatServer, **overrides) -> LLMConfig:
    options = dict(url=server.url, model="test-model", api_key="sk-test", timeout_s=5.0, max_retries=2)
    options.update(overrides)
    return LLMConfig(**options)


def ask(config):
    return generate_llm_question(config, TRAJECTORIES, [PERSON, DOG], "camera", TIMES)


def test_build_prompt_structure():
    messages = build_prompt(TRAJECTORIES, [PERSON, DOG], "camera", TIMES)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "x points forward, y points left and z points up" in user
    assert "Observer: camera." in user and "from 0.5s to 1.5s" in user
    assert f"- {PERSON}: 0.5s (2.00, 0.50, 0.00); 1.0s (1.50, 0.25, 0.00); 1.5s (1.00, 0.00, 0.00)" in user
    assert f"- {DOG}: 0.5s (3.00, -1.00, 0.20)" in user
    assert "-0.00" not in user
    assert "exactly six lines" in user and "line 2: A." in user and "not be quantitative" in user


def test_build_prompt_checks_its_inputs():
    with pytest.raises(ShapeError, match="trajectories must have shape"):
        build_prompt(np.zeros((2, 3)), [PERSON, DOG], "camera", TIMES)
    with pytest.raises(ShapeError, match="times_s"):
        build_prompt(TRAJECTORIES, [PERSON, DOG], "camera", [0.5, 1.0])
    with pytest.raises(ShapeError, match="categories has 1 names"):
        build_prompt(TRAJECTORIES, [PERSON], "camera", TIMES)
    nan = np.array(TRAJECTORIES)
    nan[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="visible at every sampled time"):
        build_prompt(nan, [PERSON, DOG], "camera", TIMES)
    with pytest.raises(ValueError, match="strictly increasing"):
        build_prompt(TRAJECTORIES, [PERSON, DOG], "camera", [0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="distinct"):
        build_prompt(TRAJECTORIES, [PERSON, PERSON], "camera", TIMES)


def test_time_labels_keep_times_distinct():
    assert time_labels([0.5, 1.0]) == ["0.5s", "1.0s"]
    assert time_labels([0.0, 0.04, 0.08]) == ["0.00s", "0.04s", "0.08s"]


def lines(question="Does the dog get closer?", a="Yes.", b="No.", c="It stays.", d="It leaves.", letter="B"):
    return "\n".join([question, f"A. {a}", f"B. {b}", f"C. {c}", f"D. {d}", letter])


def test_parse_reply_valid_and_tolerant():
    question, options, letter = parse_reply(VALID)
    assert question.startswith("Which object ends up closer")
    assert options == (f"The {PERSON}.", f"The {DOG}.", "Both end up equally close.", "Neither moves.")
    assert letter == "A"
    messy = ("<think>x is 0.3 here</think>\n\n  Question: Does the dog pass in front of the person?  \n\n"
             "A) Yes, from left to right.\nB. Yes, from right to left.\n\nC. No, it stays behind.\n"
             "D. No, it moves away.\n  Answer: C  \n\n")
    assert parse_reply(messy) == ("Does the dog pass in front of the person?",
                                  ("Yes, from left to right.", "Yes, from right to left.", "No, it stays behind.",
                                   "No, it moves away."), "C")
    assert parse_reply("Answer:\n" + lines()) == parse_reply("Answer: " + lines()) == parse_reply(lines())


@pytest.mark.parametrize("reply, reason", [
    ("", "exactly six non-empty lines.*got 0"),
    (INVALID, "exactly six non-empty lines.*got 4"),
    (lines() + "\nExtra line", "got 7"),
    (lines().replace("B. No.", "No."), "should start with 'B.'"),
    (lines().replace("C. It stays.", "D. It stays."), "should start with 'C.'"),
    (lines(c="  yes. "), "not distinct"),
    (lines(d="").replace("D. ", "D."), "option D is empty"),
    (lines(letter="E"), "last line must be the correct letter"),
    (lines(letter="b"), "last line must be the correct letter"),
    (lines(letter="Both A and B"), "last line must be the correct letter"),
    (lines(question="Does the dog reach 0.35 in front?"), "question is quantitative.*decimal number.*0.35"),
    (lines(question="Is the dog at (0.3, -1.2, 0.0) at the end?"), "coordinate tuple"),
    (lines(question="When does the dog cross x = 0?"), "axis assignment"),
    (lines(question="Does the dog's y-axis value grow?"), "axis name"),
    (lines(question="Do the dog's coordinates change?"), "word 'coordinate'"),
    (lines(question="Does the dog move two meters forward?"), "unit.*meters"),
    (lines(question="Does the dog pass 3 people?"), r"a number \('3'\)"),
    (lines(b="About 2.5 m closer."), "option B is quantitative"),
    (lines(question="From the perspective of the camera, does the dog get closer?"), "perspective"),
])
def test_parse_reply_rejects_with_a_reason(reply, reason):
    with pytest.raises(InvalidReply, match=reason) as info:
        parse_reply(reply)
    assert info.value.reason == str(info.value)


def test_parse_reply_allows_object_names_boxes_and_time_labels():
    question = f"Between 0.5s and 1.5s, does {PERSON} overtake the cup with box [1, 2, 3, 4]?"
    assert parse_reply(lines(question=question), allowed=[PERSON, "0.5s", "1.5s"])[0] == question
    with pytest.raises(InvalidReply, match="decimal"):
        parse_reply(lines(question=question), allowed=[PERSON])


def test_generate_valid_reply_and_request_body(chat_server):
    chat_server.reply(VALID)
    result = ask(config_for(chat_server, temperature=0.2))
    assert result.answer == "A" and result.attempts == 1 and result.rejections == ()
    assert result.options[2] == "Both end up equally close." and result.model == "test-model"
    assert len(chat_server.requests) == 1
    request = chat_server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["body"]
    assert body["model"] == "test-model" and body["temperature"] == 0.2
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    user = body["messages"][1]["content"]
    assert "x points forward, y points left and z points up" in user
    assert "1.5s (1.00, 0.00, 0.00)" in user and DOG in user
    assert list(result.messages) == body["messages"]


def test_generate_retries_after_an_invalid_reply(chat_server):
    chat_server.reply(INVALID)
    chat_server.reply(lines(question="Does the dog reach 0.35 in front?"))
    chat_server.reply(VALID)
    result = ask(config_for(chat_server))
    assert result.attempts == 3 and result.answer == "A"
    assert [r.attempt for r in result.rejections] == [1, 2]
    assert "six non-empty lines" in result.rejections[0].reason and result.rejections[0].reply == INVALID
    assert "decimal number" in result.rejections[1].reason
    assert len(chat_server.requests) == 3


def test_generate_gives_up_after_max_retries_with_reasons(chat_server):
    for _ in range(5):
        chat_server.reply(INVALID)
    with pytest.raises(LLMError, match="no acceptable question in 3 attempts.*attempt 1: expected exactly six") as info:
        ask(config_for(chat_server, max_retries=2))
    assert [r.attempt for r in info.value.rejections] == [1, 2, 3]
    assert all("six non-empty lines" in r.reason for r in info.value.rejections)
    assert len(chat_server.requests) == 3


def test_generate_reply_without_content_is_rejected(chat_server):
    chat_server.reply(None)
    chat_server.reply(VALID)
    result = ask(config_for(chat_server))
    assert "no text content" in result.rejections[0].reason


def test_http_error_raises_immediately_with_context(chat_server):
    chat_server.status(500, '{"error": "boom"}')
    with pytest.raises(LLMError, match=r"127\.0\.0\.1:\d+/v1/chat/completions answered HTTP 500.*boom.*server's log"):
        ask(config_for(chat_server))
    assert len(chat_server.requests) == 1


def test_http_error_after_rejections_keeps_them(chat_server):
    chat_server.reply(INVALID)
    chat_server.status(401, "bad key")
    with pytest.raises(LLMError, match="HTTP 401.*check the API key.*after 1 rejected") as info:
        ask(config_for(chat_server))
    assert len(info.value.rejections) == 1


def test_slow_server_times_out(chat_server):
    chat_server.slow(1.0, VALID)
    start = time.monotonic()
    with pytest.raises(LLMError, match="did not answer within 0.2 s.*timeout_s"):
        ask(config_for(chat_server, timeout_s=0.2))
    assert time.monotonic() - start < 0.9


def test_non_openai_response_and_unreachable_server(chat_server):
    chat_server.raw(b'{"result": "hello"}')
    with pytest.raises(LLMError, match="did not return an OpenAI chat completion"):
        ask(config_for(chat_server))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(LLMError, match=f"could not reach http://127.0.0.1:{closed_port}/v1/chat/completions"):
        ask(LLMConfig(url=f"http://127.0.0.1:{closed_port}/v1", model="m", timeout_s=2.0))


def test_no_api_key_sends_no_authorization(chat_server):
    chat_server.reply(VALID)
    ask(config_for(chat_server, api_key="", url=chat_server.url + "/chat/completions/"))
    assert "Authorization" not in chat_server.requests[0]["headers"]
    assert chat_server.requests[0]["path"] == "/v1/chat/completions"


def test_config_validation_and_key_resolution():
    config = LLMConfig(url="http://127.0.0.1:8000/v1/", model="m")
    assert config.endpoint == "http://127.0.0.1:8000/v1/chat/completions"
    assert config.with_key_from({"OPENAI_API_KEY": "sk-1"}).api_key == "sk-1"
    assert config.with_key_from({}).api_key == ""
    custom = LLMConfig(url="http://h/v1", model="m", api_key_env="MY_KEY")
    assert custom.with_key_from({"MY_KEY": "k", "OPENAI_API_KEY": "other"}).api_key == "k"
    explicit = LLMConfig(url="http://h/v1", model="m", api_key="mine")
    assert explicit.with_key_from({"OPENAI_API_KEY": "other"}).api_key == "mine"
    assert "mine" not in repr(explicit)
    with pytest.raises(ValueError, match="http:// or https://"):
        LLMConfig(url="127.0.0.1:8000/v1", model="m")
    with pytest.raises(ValueError, match="max_retries"):
        LLMConfig(url="http://h/v1", model="m", max_retries=-1)
    with pytest.raises(ValueError, match="timeout_s"):
        LLMConfig(url="http://h/v1", model="m", timeout_s=0)


def test_to_record(chat_server):
    chat_server.reply(VALID)
    result = ask(config_for(chat_server))
    record = result.to_record("vid", viewpoint="relative", observer_desc="camera", interval_s=(0.5, 1.5),
                              targets=("1", "2"))
    assert record.qtype == "llm" and record.answer == "A" and record.targets == ("1", "2")
    assert record.question.startswith("Following the perspective of camera, between 0.5s and 1.5s, which object")
    absolute = result.to_record("vid", viewpoint="absolute", observer_desc="camera at 1.0s", interval_s=(0.5, 1.5))
    assert absolute.question.startswith("From the perspective of camera at 1.0s, between 0.5s and 1.5s, which")
    with pytest.raises(ValueError, match="viewpoint"):
        result.to_record("vid", viewpoint="sideways", observer_desc="c", interval_s=(0.0, 1.0))
