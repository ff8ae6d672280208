"""Conditions, functions, sequences and block calls in chains (issue 10's language part)."""

from __future__ import annotations

import pytest

import netdsl
from netdsl import NetdslError
from netdsl.evaluate import make_divisible
from netdsl.fmt import format_text, tokens_for_check

# One inverted-residual block: the shortcut only where the stride is 1 and the channels agree,
# the expansion left out when t is 1 (MobileNetV2's rule, as torchvision writes it).
INVERTED = """
block inverted(cin, c, s=1, t=6) {
    if s == 1 and cin == c {
        residual { conv = layers(cin, c, s, t) }
    } else {
        conv = layers(cin, c, s, t)
    }
}
block layers(cin, c, s, t) {
    [
        if t != 1 { [conv1-(cin*t) +bn +relu6] }
        [conv3-(cin*t)/s groups=(cin*t) +bn +relu6]
        conv1-c; bn
    ]
}
"""


def load(text: str, params: dict[str, object] | None = None) -> netdsl.Network:
    return netdsl.loads(text, "t.net", params)


def error(text: str) -> NetdslError:
    with pytest.raises(NetdslError) as e:
        load(text)
    return e.value


def names(net: netdsl.Network) -> list[str]:
    return [r.name for r in net.layers(training=True)]


def test_if_chooses_the_shortcut_and_the_expansion_per_call() -> None:
    net = load("input 16x8x8\ndefault conv bias=off\n" + INVERTED +
               "features = [inverted(16, 16, 1, 1); inverted(16, 24, 2); inverted(24, 24)]\n")
    got = names(net)
    # t = 1: no expansion (conv.0 is the depthwise conv); stride 2: no shortcut
    assert [n for n in got if n.startswith("features.0.")] == [
        "features.0.conv.0.0", "features.0.conv.0.1", "features.0.conv.0.2",
        "features.0.conv.1", "features.0.conv.2", "features.0.add1"]
    assert "features.1.conv.3" in got and not any(n.startswith("features.1.add") for n in got)
    assert "features.2.add1" in got and "features.2.conv.1.0" in got
    # parameters by hand: 16·9 + 2·16 + 16·16 + 2·16; 16·96 + 2·96 + 96·9 + 2·96 + 96·24 +
    # 2·24; 24·144 + 2·144 + 144·9 + 2·144 + 144·24 + 2·24
    assert net.params == (144 + 32 + 256 + 32) + (1536 + 192 + 864 + 192 + 2304 + 48) + \
        (3456 + 288 + 1296 + 288 + 3456 + 48)


def test_else_if_chains_and_not_or() -> None:
    text = """input 8x4x4
        block pick(k) {
            if k < 0 or k > 9 { relu } else if not k % 2 == 0 { sigmoid } \\
            else if k >= 2 and k <= 4 { tanh } else { relu6 }
        }
        pick(-1); pick(3); pick(2); pick(6); pick(10)
    """
    ops = [r.op for r in load(text).layers()]
    assert ops == ["relu", "sigmoid", "tanh", "relu6", "relu"]


def test_a_false_condition_without_else_is_the_identity() -> None:
    net = load("param deep = 0\ninput 3x8x8\nconv3-8\nif deep == 1 { conv3-8 ×4 }\nFC-10")
    assert [r.op for r in net.layers()] == ["conv3-8", "FC-10"]
    net = load("param deep = 0\ninput 3x8x8\nconv3-8\nif deep == 1 { conv3-8 ×4 }\nFC-10",
               {"deep": 1})
    assert len(net.layers()) == 6


@pytest.mark.parametrize(("text", "message", "where"), [
    ("if c + 1 { relu }", "the condition of 'if' needs true or false, got 9", (3, 4)),
    ("if cc == 8 { relu }", "unknown name 'cc'", (3, 4)),
    ("if c == 8 and 1 { relu }", "'and' needs true or false, got 1", (3, 15)),
    ("if not c { relu }", "'not' needs true or false, got 8", (3, 8)),
    ("if c < (c == 8) { relu }", "'<' compares numbers, got 8 and true", (3, 4)),
    ("conv3-(c + (c > 1))", "'+' needs numbers, got 8 and true", (3, 8)),
])
def test_condition_errors_are_located(text: str, message: str, where: tuple[int, int]) -> None:
    e = error(f"param c = 8\ninput 3x8x8\n{text}\n")
    assert e.message == message
    assert (e.loc.line, e.loc.col) == where


@pytest.mark.parametrize("text", ["else { relu6 }", "else if 2 > 1 { relu6 }", "else relu6",
                                  "else if 2 >= 1 and 1 % 2 == 1 { relu6 }"])
def test_else_on_its_own_line_says_where_it_goes(text: str) -> None:
    e = error(f"input 3x8x8\nif 1 == 1 {{ relu }}\n{text}\n")
    assert e.message == "'else' without an 'if' before it" and (e.loc.line, e.loc.col) == (3, 1)
    assert "'} else {'" in (e.hint or "")


def test_functions() -> None:
    env = "param w = 1.4\nparam d = 1.8\ninput 3x8x8\n"
    net = load(env + "a = conv1-(make_divisible(32*w, 8))\nb = conv1-(max(8, floor(10*w)))\n"
               "c = conv1-(min(ceil(3*d), round(2.5), round(3.5)))\n"
               "e = conv1-(make_divisible(10, 8, 16))\n")
    got = {r.name: r.shape[1] for r in net.layers()}
    assert got == {"a": 48, "b": 14, "c": 2, "e": 16}  # round: halves to even, as Python


@pytest.mark.parametrize(("expr", "message"), [
    ("mx(1, 2)", "unknown function 'mx'"),
    ("floor(1, 2)", "floor() takes 1 argument(s), got 2"),
    ("make_divisible(10)", "make_divisible() takes 2 to 3 argument(s), got 1"),
    ("make_divisible(10, 0.5)", "make_divisible's divisor and minimum are whole numbers ≥ 1, "
                                "got 0.5"),
    ("max(1, 1 == 1)", "max() needs numbers, got true"),
    ("ceil(1e300 * 1e10)", "arithmetic result is absurdly large"),
    ("floor(1e30)", "arithmetic result is absurdly large"),
])
def test_function_errors(expr: str, message: str) -> None:
    e = error(f"input 3x8x8\nconv1-({expr})\n")
    assert e.message == message and e.loc.line == 2


def test_make_divisible_is_torchvisions() -> None:
    from .torchvision_oracle import import_torchvision

    tv = import_torchvision()
    from torchvision.models._utils import _make_divisible  # noqa: PLC0415

    for v in [*range(1, 200), *(c * w for c in (16, 24, 32, 40, 96, 1280)
                               for w in (0.35, 0.5, 0.75, 1.1, 1.4, 1.8, 2.0))]:
        for d in (4, 8):
            assert make_divisible(v, d) == _make_divisible(v, d), (v, d)
    assert tv is not None


def test_repetition_index() -> None:
    net = load("input 3x8x8\nstage = [conv1-(8*(i+1)) ×3]\nx_{i} = conv1-(4 + i) ×2\n")
    got = {r.name: r.shape[1] for r in net.layers()}
    assert got == {"stage.0": 8, "stage.1": 16, "stage.2": 24, "x_0": 4, "x_1": 5}
    # a param named i keeps its meaning
    net = load("param i = 5\ninput 3x8x8\nconv1-i ×2\n")
    assert [r.shape[1] for r in net.layers()] == [5, 5]
    # nested repetitions: the inner index
    net = load("input 3x8x8\n(conv1-(1 + i) ×2) ×2\n")
    assert [r.shape[1] for r in net.layers()] == [1, 2, 1, 2]


def test_sequences_number_every_module_like_nn_sequential() -> None:
    net = load("""input 3x16x16
        block se(c) { scale { gap; fc1 = conv1-(c/4); relu; fc2 = conv1-c; hsigmoid } }
        block cbr(c, s=1) { [conv3-c/s +bn +relu6] }
        features = [
            cbr(16, 2)
            [conv1-16; bn]
            se(16)
            residual { conv3-16 }
            relu ×2
            7 = conv1-8
            conv1-8
        ]
        gap
        classifier = [dropout 0.2; FC-10]
    """)
    got = names(net)
    assert got == [
        "features.0.0", "features.0.1", "features.0.2", "features.1.0", "features.1.1",
        "features.2.gap1", "features.2.fc1", "features.2.relu1", "features.2.fc2",
        "features.2.hsigmoid1", "features.2.mul1", "features.3.conv1", "features.3.add1",
        "features.4", "features.5", "features.7", "features.6", "gap1", "classifier.0",
        "classifier.1"]
    pytest.importorskip("torch")
    keys = list(netdsl.to_torch(net).state_dict())
    assert "features.2.fc1.weight" in keys and "classifier.1.weight" in keys
    assert "features.0.1.running_var" in keys


def test_block_calls_in_chains() -> None:
    net = load("""input 3x8x8
        block se(c) { scale { gap; fc1 = conv1-(c/4); relu; fc2 = conv1-c; hsigmoid } }
        block cbr(c) { conv3-c; bn; relu }
        conv3-16 +bn +se(16) +relu
        x = conv3-16 +cbr(8) +cbr(4)
        FC-10
    """)
    assert names(net)[:8] == ["conv1", "bn1", "se1.gap1", "se1.fc1", "se1.relu1", "se1.fc2",
                              "se1.hsigmoid1", "se1.mul1"]
    assert "x.cbr1.conv1" in names(net) and "x.cbr2.relu1" in names(net)
    assert net.layers()[-1].params == 4 * 8 * 8 * 10 + 10
    e = error("input 3x8x8\nconv3-16 +bn +hswish()\n")
    assert e.message == "unknown block 'hswish'"
    assert e.hint == "'hswish' is a layer, not a block: write it without parentheses"


@pytest.mark.parametrize(("word", "message", "hint"), [
    ("upsample 2", "no such layer type 'upsample'", "the layer types netdsl has are the table "
                                                    "'Layers' of its README (conv, maxpool"),
    ("pixelshuffle 2", "no such layer type 'pixelshuffle'", "the layer types netdsl has"),
    ("layernrom", "unknown layer 'layernrom'", "did you mean 'layernorm'?"),
    ("maxpol", "unknown layer 'maxpol'", "did you mean 'maxpool'?"),
    ("bm", "unknown layer 'bm'", "did you mean 'bn'?"),
])
def test_a_layer_type_that_does_not_exist_is_not_called_a_typo(word: str, message: str,
                                                                hint: str) -> None:
    e = error(f"input 3x8x8\n{word}\n")
    assert e.message == message and (e.hint or "").startswith(hint), e.hint


SPEC = """param w = 1.4
input 3x8x8
block b(a,c,s=1) {
    if s==1 and a==c{residual{conv3-c}}else if not s>1 or c<=  a {conv3-c/s} else{
        conv3-(make_divisible(c*w,8))/s  +bn+relu6
    }
}
f = [ b(3, 8, 2) ;b(8,8) ;conv1-(max( 8,floor(c*1)) ) ]
"""


def test_fmt_formats_and_round_trips_the_new_syntax() -> None:
    text = SPEC.replace("floor(c*1)", "floor(8*w)")
    pretty = format_text(text)
    assert pretty == """param w = 1.4
input 3x8x8
block b(a, c, s=1) {
    if s == 1 and a == c { residual { conv3-c } } else if not s > 1 or c <= a { conv3-c/s } else {
        conv3-(make_divisible(c*w, 8))/s +bn +relu6
    }
}
f = [b(3, 8, 2); b(8, 8); conv1-(max(8, floor(8*w)))]
"""
    assert format_text(pretty) == pretty
    assert tokens_for_check(pretty) == tokens_for_check(text)
    assert load(pretty).params == load(text).params


def test_lexer_tokenizes_the_new_syntax() -> None:
    pytest.importorskip("pygments")
    from pygments.token import Error, Keyword, Name, Operator

    from netdsl.lexer import NetdslLexer

    toks = [(t, v) for t, v in NetdslLexer().get_tokens(SPEC) if v.strip()]
    assert not [t for t, _ in toks if t in Error]
    kinds: dict[str, list[object]] = {}
    for t, v in toks:
        kinds.setdefault(v, []).append(t)
    assert all(k in Keyword for w in ("if", "and", "else", "not", "or") for k in kinds[w])
    assert all(k in Operator for w in ("==", "<=", ">") for k in kinds[w])
    assert kinds["make_divisible"] == [Name.Builtin] and kinds["max"] == [Name.Builtin]
    assert kinds["b"][0] is Name.Function
    assert kinds["s"][:2] == [Name.Attribute, Name]  # `s=1` is a default, `s==1` a name


# ---- hostile and newcomer input on the new syntax (review) ----------------------------------
@pytest.mark.parametrize("name", sorted(__import__("netdsl.evaluate").evaluate.FUNCTIONS))
@pytest.mark.parametrize("value", ["8", "2.5", "0", "-8", "1e300", "(1 == 1)"])
def test_every_function_at_its_argument_counts_gives_a_value_or_a_located_error(
        name: str, value: str) -> None:
    """A function is called with its fewest and most arguments of any value: min(8) once
    reached Python's min() with one int (TypeError, exit 3)."""
    from netdsl.evaluate import FUNCTIONS

    _, least, most, _ = FUNCTIONS[name]
    for n in sorted({least, min(most, 4)}):
        text = f"input 3x8x8\nconv1-(1 + 0*{name}({', '.join([value] * n)}))\n"
        try:
            assert load(text).params == 4  # one output channel: 3 weights and a bias
        except NetdslError as e:
            assert e.loc is not None and e.loc.line == 2


def test_min_and_max_of_one_value_are_that_value() -> None:
    net = load("input 3x8x8\na = conv1-(min(5))\nb = conv1-(max(7))\n")
    assert {r.name: r.shape[1] for r in net.layers()} == {"a": 5, "b": 7}


@pytest.mark.parametrize("cond", ["if(c > 1)", "if not(c < 1)", "if c < 1 or(c > 1)",
                                  "if c > 9 { relu6 } else if(c > 1)"])
def test_a_keyword_before_a_parenthesis_is_the_keyword_not_a_call(cond: str) -> None:
    """`if(…)` and `not(…)` as in Python (they were read as calls of a block 'if', a
    function 'not': "unknown function 'not'", "unexpected '{'")."""
    text = f"param c = 2\ninput 3x8x8\n{cond} {{ relu }} else {{ identity }}\n"
    assert [r.op for r in load(text).layers()][-1] == "relu"
    assert load(format_text(text)).params == load(text).params
    pytest.importorskip("pygments")
    from pygments.token import Keyword

    from netdsl.lexer import NetdslLexer

    toks = [(t, v) for t, v in NetdslLexer().get_tokens(text) if v in ("if", "not", "or")]
    assert toks and all(t in Keyword for t, _ in toks)


@pytest.mark.parametrize(("layer", "message"), [
    ("conv3-(1 < 2)", "invalid output channels for conv: got true (a comparison), expected a "
                      "number"),
    ("conv3-8 groups=(1 == 2)", "invalid groups for conv: got false (a comparison), expected "
                                "a number"),
    ("conv3-8 kernel=abc", "invalid kernel size for conv: got 'abc', expected a whole number "
                           "or one per axis (1x7)"),
    ("maxpool stride=q", "invalid stride for maxpool: got 'q', expected a whole number or "
                         "one per axis (1x7)"),
])
def test_a_comparison_or_a_word_as_a_size_is_a_located_error(layer: str, message: str) -> None:
    """A condition's value reaching a size said 'got True' (Python's spelling); a bare word as
    a size option (`kernel=abc`) was an internal ValueError."""
    e = error(f"input 3x8x8\n{layer}\n")
    assert e.message == message and (e.loc.line, e.loc.col) == (2, 1)


@pytest.mark.parametrize("text", ["conv3-(8 + i)\n", "block b() { conv3-(8 + i) }\nb() ×2\n"])
def test_i_outside_a_repetition_says_where_it_is_defined(text: str) -> None:
    e = error("input 3x8x8\n" + text)
    assert e.message == "unknown name 'i': no repetition here"
    assert "b(i) ×4" in (e.hint or "") and e.loc.col == text.index("i)") + 1
    # and the hint works: a block parameter named i takes the index
    net = load("input 3x8x8\nblock b(i) { conv1-(8 + i) }\nb(i) ×2\n")
    assert [r.shape[1] for r in net.layers()] == [8, 9]


@pytest.mark.parametrize("body", [
    "x = [0 = conv3-8; 0 = b()]", "x = [0 = b(); 0 = conv3-8]",
    "x = [0 = (conv3-8); 0 = (conv3-8)]", "x = [b(); 0 = b()]", "x = [0 = conv3-8; 0 = relu]"])
def test_a_position_given_twice_is_refused_whatever_holds_it(body: str) -> None:
    """A position held by a block call or a group was given again silently: the two merged
    into one scope, or a layer x.0 held x.0.conv1 (emit refused what check had passed)."""
    e = error(f"input 3x8x8\nblock b() {{ conv3-8 }}\n{body}\n")
    assert e.message == "position 0 of 'x' is already taken" and e.loc.line == 3
    assert e.loc.col >= body.rindex("0 =") + 1  # at the statement or its layer


@pytest.mark.parametrize(("body", "names"), [
    ("x = (conv3-8)\nx = conv3-8", ["x.conv1", "x2"]),  # a layer after the scope: renamed
    ("b1 = conv3-8\nb()", ["b1", "b2.conv1"]),  # an unnamed call skips the layer's name
    ("x = [0 = (relu); conv3-8]", ["x.0.relu1", "x.1"]),  # the group holds position 0
])
def test_a_name_is_a_layer_or_a_scope_never_both(body: str, names: list[str]) -> None:
    net = load(f"input 3x8x8\nblock b() {{ conv3-8 }}\n{body}\n")
    assert [r.name for r in net.layers()] == names
    pytest.importorskip("torch")
    keys = netdsl.to_torch(net).state_dict()  # the module builds, each conv under its name
    assert {k.rsplit(".", 1)[0] for k in keys} == {n for n in names if "relu" not in n}


def test_a_layer_cannot_hold_a_scope() -> None:
    e = error("input 3x8x8\nx = conv3-8\nx = (conv3-8)\n")
    assert e.message == "'x' names both a layer and a scope of layers"
    assert (e.loc.line, e.loc.col) == (3, 6) and "rename one of them" in (e.hint or "")


@pytest.mark.parametrize(("line", "hint"), [
    ("if c = 1 { relu }", "compare with '=='"),
    ("if c == 1 relu", "the body of 'if' is in braces"),
    ("if c > 1: relu", "the body of 'if' is in braces"),
    ("if c => 1 { relu }", "write '>=' or '<='"),
    ("if c <> 1 { relu }", "write '!='"),
    ("if c != 1 && c != 2 { relu }", "write 'and'"),
    ("if !(c > 1) { relu }", "write 'not'"),
    ("elif c == 1 { relu }", "write 'else if'"),
    ("if c > 1 { relu } elif c > 0 { relu6 }", "write 'else if'"),
    ("conv3-(c ** 2)", "no power operator"),
    ("conv3-(c ^ 2)", "no power operator"),
])
def test_other_languages_spellings_get_netdsls_own(line: str, hint: str) -> None:
    """A newcomer's Python/C spelling in a condition got the parser's list of expected tokens
    (a dead end); the hint names netdsl's spelling, on the error's own line."""
    e = error(f"param c = 2\ninput 3x8x8\n{line}\n")
    assert e.loc.line == 3 and hint in (e.hint or ""), e.hint


@pytest.mark.parametrize("text", ["param se = true\ninput 3x8x8\nif se == 1 { relu }\n",
                                  "input 3x8x8\nif False { relu }\n"])
def test_true_and_false_are_not_values_and_the_hint_says_what_is(text: str) -> None:
    e = error(text)
    assert e.message.endswith("netdsl has no true/false values")
    assert "'if se == 1 { … }'" in (e.hint or "")
