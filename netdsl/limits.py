"""Every size limit netdsl enforces, in one place (README "Limits" lists them for users).

A spec is small text that can describe a huge network or a huge file; these bound what one
check may cost. Each is enforced where the quantity is known: the parser (text, nesting,
literals), the evaluator (arithmetic), the estimate (layers, before expanding), the expansion
(layers, tensors, parameters), and error collection (errors reported at once).
"""

from __future__ import annotations

# ---- text (parse) ---------------------------------------------------------------------------
# A spec is text a person wrote or a search loop generated. 64 Ki characters keep `check` under
# 2 s for any spec (50,000 one-word statements at 256 KiB took 7-9 s: Lark's per-token cost).
MAX_SPEC_CHARS = 64 << 10
MAX_DEPTH = 100  # nesting of the syntax tree (brackets, blocks, operators): a legit spec uses ~20
MAX_TERMS = 100  # operands of one flat sum or product: a legit spec uses a few
MAX_LITERAL_DIGITS = 30  # an integer literal longer than this is refused before int()
MAX_INCLUDE_DEPTH = 32  # files including files
MAX_ERRORS = 10  # errors reported together; past this, checking stops

# ---- values (evaluate) ----------------------------------------------------------------------
MAX_INT = 1 << 62  # parameter arithmetic beyond this is refused, not computed
MAX_DIM = 1 << 31  # one dimension of any size, channel count or kernel (guards absurd input)
MAX_DEFAULT_WORDS = 64  # words of the `default` lines of one layer type (every layer reads them)

# ---- the expanded network (estimate, expand) ------------------------------------------------
MAX_LAYERS = 100_000  # layers of the expanded network
MAX_ELEMENTS = 1 << 40  # elements of one activation tensor, per image
MAX_PARAMS = 1 << 36  # parameters of one layer
MAX_NESTING = 50  # groups, constructs and block calls nested inside each other while expanding
MAX_WINDOW = 64  # side of an attention window: its relative position bias pairs M² tokens
MAX_FOLD_ELEMENTS = 1 << 24  # elements of one array `import` computes with numpy (a folded
# constant, a shape found by evaluation, a data movement checked on element numbers)
MAX_DENSE_UNITS = 256  # units of one dense block (each reads all before it: quadratic)
MAX_ESTIMATE_STEPS = 200_000  # past this the estimate stops early (the expansion still counts)
