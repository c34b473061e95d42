"""Calculator annotations ``<<expr=result>>`` (GSM8K, GSM8k-Aug): make and check them."""

from __future__ import annotations

import ast
import math
import operator
import re

from rim.common.errors import RimInputError

_CALC = re.compile(r"<<([^<>=]+)=([^<>=]+)>>")
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def calc_step(expression: str, result: int | float) -> str:
    """``calc_step("3*4", 12) -> "<<3*4=12>>"`` (integral results written without ``.0``)."""
    if isinstance(result, float) and result.is_integer():
        result = int(result)
    return f"<<{expression}={result}>>"


def evaluate(expression: str) -> float:
    """Evaluate ``+ - * /`` arithmetic over numbers (parentheses allowed) without `eval`.

    Raises `RimInputError` for anything else.
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise RimInputError(f"not an arithmetic expression: {expression!r}") from None
    return _eval(tree.body, expression)


def _eval(node: ast.AST, expression: str) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand, expression)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left, expression), _eval(node.right, expression)
        if isinstance(node.op, ast.Div) and right == 0:
            raise RimInputError(f"division by zero in {expression!r}")
        return _OPS[type(node.op)](left, right)
    raise RimInputError(f"unsupported arithmetic in {expression!r}")


def check_calc_step(step: str, *, rel_tol: float = 1e-6) -> bool:
    """True if `step` is ``<<expr=result>>`` and ``expr`` evaluates to ``result``."""
    match = _CALC.fullmatch(step.strip())
    if match is None:
        return False
    try:
        value = evaluate(match.group(1))
        result = evaluate(match.group(2))
    except RimInputError:
        return False
    return math.isclose(value, result, rel_tol=rel_tol, abs_tol=1e-9)


def calc_result(step: str) -> str:
    """The result part of ``<<expr=result>>``."""
    match = _CALC.fullmatch(step.strip())
    if match is None:
        raise RimInputError(f"not a calculator step: {step!r}")
    return match.group(2)
