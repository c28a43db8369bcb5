"""`orchestrator serve` (alone or with its flag) starts the service without the CLI's libraries; any other
command line goes to the Typer CLI, which parses it."""

from orchestrator.serving import plain_serve


def test_serve_and_its_flag_are_recognised() -> None:
    assert plain_serve(["serve"]) is False
    assert plain_serve(["serve", "--no-kill-agents-on-shutdown"]) is False
    assert plain_serve(["serve", "--kill-agents-on-shutdown"]) is True


def test_anything_else_is_left_to_the_cli() -> None:
    for argv in (
        [],
        ["serve", "--help"],
        ["serve", "--kill-agents-on-shutdown", "--help"],
        ["serve", "--kill"],
        ["--json", "serve"],
        ["agents", "ls"],
        ["install-claude"],
    ):
        assert plain_serve(argv) is None, argv
