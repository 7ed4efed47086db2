"""Messages the bot cannot read are recognised before any article is chosen."""
from bot.dialogue.input_check import InputProblem, input_problem


def test_empty_and_blank_messages() -> None:
    assert input_problem("", 1000) is InputProblem.EMPTY
    assert input_problem("  \n\t ", 1000) is InputProblem.EMPTY
    assert input_problem(None, 1000) is InputProblem.EMPTY


def test_too_long_message() -> None:
    assert input_problem("a" * 10_000, 1000) is InputProblem.TOO_LONG
    assert input_problem("a" * 1000, 1000) is None


def test_emoji_symbols_and_control_characters_have_no_words() -> None:
    assert input_problem("😀🎉👍", 1000) is InputProblem.NO_WORDS
    assert input_problem("\x00\x07\x1b", 1000) is InputProblem.NO_WORDS
    assert input_problem("?!...", 1000) is InputProblem.NO_WORDS


def test_ordinary_questions_in_any_script_are_readable() -> None:
    assert input_problem("how do I cancel?", 1000) is None
    assert input_problem("<script>alert(1)</script>", 1000) is None
    assert input_problem("mot de passe oublié", 1000) is None
    assert input_problem("パスワード", 1000) is None
