from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.ids import is_agent_id, new_agent_id
from orchestrator.domain.lifecycles import AGENTS
from orchestrator.domain.redact import MARK, Redactor
from orchestrator.domain.types import TERMINAL_AGENT_STATUSES, AgentStatus, AgentType


def test_agent_ids_look_like_type_and_eight_hex() -> None:
    for kind in AgentType:
        agent_id = new_agent_id(kind)
        assert is_agent_id(agent_id) and agent_id.startswith(kind.value + "-")
    assert not is_agent_id("coding-XYZ")


def test_statuses_never_move_backwards() -> None:
    order = {AgentStatus.STARTING: 0, AgentStatus.RUNNING: 1}
    for a, b in itertools.product(AgentStatus, repeat=2):
        if AGENTS.may_move(a, b):
            assert a not in TERMINAL_AGENT_STATUSES
            assert order.get(b, 2) > order[a]
    assert AGENTS.may_move(AgentStatus.STARTING, AgentStatus.RUNNING)
    assert not AGENTS.may_move(AgentStatus.COMPLETED, AgentStatus.RUNNING)
    assert not AGENTS.may_move(AgentStatus.KILLED, AgentStatus.COMPLETED)


def test_redactor_hides_known_secrets_and_secret_shapes() -> None:
    redact = Redactor(["my-very-secret-value", None, "abc"])
    text = (
        "token my-very-secret-value; gh ghp_abcdefghijklmnopqrstuvwxyz0123; "
        "url https://x-access-token:ghs_secretsecretsecret@github.com/o/r.git; "
        "header Authorization: Bearer eyJhbGciOi; key sk-ant-api03-abcdefghijk"
    )
    out = redact(text)
    for secret in ["my-very-secret-value", "ghp_abcdef", "ghs_secret", "eyJhbGciOi", "sk-ant-api03"]:
        assert secret not in out
    assert out.count(MARK) >= 5
    assert "github.com/o/r.git" in out
    assert redact("abc stays") == "abc stays"


@given(st.text())
def test_redactor_never_grows_a_secret(text: str) -> None:
    secret = "zz-secret-zz"
    assert secret not in Redactor([secret])(text + secret + text)


def test_redactor_hides_cloud_credentials() -> None:
    redact = Redactor()
    aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    aws_session = "FwoGZXIvYXdzEBQaDNlbmd0aG9mdGhldG9rZW4"
    key_body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    secrets = {
        "AKIAIOSFODNN7EXAMPLE": "key id AKIAIOSFODNN7EXAMPLE here",
        aws_secret: f"AWS_SECRET_ACCESS_KEY={aws_secret}",
        aws_session: f'aws_session_token = "{aws_session}"',
        "AIzaSyA1234567890abcdefghijklmnopqrstuv": "google key AIzaSyA1234567890abcdefghijklmnopqrstuv.",
        "ya29.a0AfH6SMBexampleexampleexample": "Bearer-less ya29.a0AfH6SMBexampleexampleexample",
        key_body: f'"private_key": "-----BEGIN PRIVATE KEY-----\\n{key_body}\\n-----END PRIVATE KEY-----\\n"',
    }
    for secret, text in secrets.items():
        out = redact(text)
        assert secret not in out and MARK in out, out
    assert redact("AWS_REGION=eu-west-1") == "AWS_REGION=eu-west-1"


def test_redactor_finds_each_secret_shape_inside_a_long_line_in_any_case() -> None:
    """The cheap gates in front of the patterns must not let a secret through: not in a short line, not
    deep in a long one, not with a header name in upper or mixed case, not in a line with non-ASCII text."""
    redact = Redactor(["literal-secret-value"])
    filler = '{"type":"assistant","text":"' + "lorem ipsum dolor sit amet " * 400
    aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    secrets = {
        "literal-secret-value": "literal-secret-value",
        "ghp_abcdefghijklmnopqrstuvwxyz0123": "ghp_abcdefghijklmnopqrstuvwxyz0123",
        "github_pat_abcdefghijklmnopqrstuvwxyz": "github_pat_abcdefghijklmnopqrstuvwxyz",
        "sk-ant-api03-abcdefghijk": "sk-ant-api03-abcdefghijk",
        "eyJhbGciOiJIUzI1": "AUTHORIZATION: bearer eyJhbGciOiJIUzI1",
        "k3y-value-123": "X-Api-Key: k3y-value-123",
        "s3cretpass": "https://user:s3cretpass@example.com/",
        "AKIAIOSFODNN7EXAMPLE": "AKIAIOSFODNN7EXAMPLE",
        aws_secret: f"Aws_Secret_Access_Key={aws_secret}",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    }
    for secret, shape in secrets.items():
        for text in (shape, "ünïcødé " + shape, filler + shape + '"}', "ünïcødé " + filler + shape):
            out = redact(text)
            assert secret not in out and MARK in out, shape
            assert out.startswith(text[: text.index(shape)])
