"""lstsd_edu.quotes: the printed line and the markdown tag that the chapters' text check reads."""

from lstsd_edu.quotes import agrees, printed, quote, tagged


def test_quote_prints_lines_that_parse_back(capsys):
    quote(acc=0.93125, gap=-0.0123)
    assert printed(capsys.readouterr().out) == {"acc": 0.93125, "gap": -0.0123}


def test_tags_are_found_with_their_precision():
    text = "LSTSD reaches 0.931<!-- quote: acc --> (93.1 %<!--quote:acc_pct-->), 1,200<!-- quote: n -->."
    assert tagged(text) == [("0.931", "acc", False), ("93.1", "acc_pct", True), ("1,200", "n", False)]


def test_a_number_agrees_at_the_precision_it_is_written_with():
    assert agrees("0.931", 0.93125) and agrees("0.93", 0.93125) and not agrees("0.932", 0.93125)
    assert agrees("93.1", 0.93125, percent=True) and not agrees("93.2", 0.93125, percent=True)
    assert agrees("1,200", 1200.0) and agrees("-0.012", -0.0123)


def test_a_typographic_minus_is_a_minus():
    text = "a difference of −0.012<!-- quote: gap --> [−0.015<!-- quote: low -->, +0.009<!-- quote: high -->]"
    assert tagged(text) == [("−0.012", "gap", False), ("−0.015", "low", False), ("0.009", "high", False)]
    assert agrees("−0.012", -0.0123) and not agrees("−0.012", 0.0123) and not agrees("0.012", -0.0123)
