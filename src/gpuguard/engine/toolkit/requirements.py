"""``NVIDIA_REQUIRE_*`` and ``CUDA_VERSION`` as the legacy hook and nvidia-container-cli treat them.

The hook collects the expressions; nvidia-container-cli evaluates them
(libnvidia-container ``src/cli/dsl.c``): a space separates OR groups, a comma
separates AND terms, keys are ``cuda``, ``driver``, ``arch``, ``brand``
(case-insensitive), an unknown key or operator is an "invalid expression",
and ``arch``/``brand`` are true when no GPU is selected. Facts we do not know
make a term either true or false; only outcomes certain under every choice
are reported as such.
"""

from __future__ import annotations

from functools import lru_cache

_OPS = ("=", "!=", "<", "<=", ">", ">=")  # dsl.c operators[], in its order
_OPCHARS = frozenset("<>=!")
_VERSION_CHARS = frozenset("0123456789.")
_DIGITS = frozenset("0123456789")
INVALID = 2  # a term value besides True/False
Facts = tuple[str | None, str | None, str | None, str | None]  # cuda, driver, arch, brand


def _span_digits(s: str, i: int) -> int:
    j = i
    while j < len(s) and s[j] in _DIGITS:
        j += 1
    return j


def compare_version(v1: str, op: str, v2: str) -> int:
    """``dsl_compare_version``: 1/0 for true/false, INVALID for -1."""
    if any(c not in _VERSION_CHARS for c in v1) or any(c not in _VERSION_CHARS for c in v2):
        return INVALID
    i = j = 0
    while i < len(v1) and j < len(v2):
        e1, e2 = _span_digits(v1, i), _span_digits(v2, j)
        if e1 == i or e2 == j:
            return INVALID
        n1, n2 = int(v1[i:e1]), int(v2[j:e2])
        if n1 != n2:
            if op == "=":
                return 0
            if op == "!=":
                return 1
            if op in ("<", "<="):
                return int(n1 < n2)
            return int(n1 > n2)
        i, j = e1, e2
        while i < len(v1) and v1[i] == ".":
            i += 1
        while j < len(v2) and v2[j] == ".":
            j += 1
    r1 = v1[i:].lstrip(".0")
    r2 = v2[j:].lstrip(".0")
    if op == "!=":
        return int(bool(r1) or bool(r2))
    if op in ("=", "<=", ">=") and not r1 and not r2:
        return 1
    if op == "=":
        return 0
    if op in ("<", "<="):
        return int(not r1 and bool(r2))
    return int(bool(r1) and not r2)


def _term(term: str, facts: Facts, gpus: bool) -> frozenset[int]:
    n = 0
    while n < len(term) and term[n] not in _OPCHARS:
        n += 1
    if n == 0 or n == len(term):
        return frozenset((INVALID,))
    m = n
    while m < len(term) and term[m] in _OPCHARS:
        m += 1
    span = term[n:m]
    op = next((o for o in _OPS if o.startswith(span)), None)  # strncmp(ptr, op, len(span))
    value = term[m:]
    if op is None or not value:
        return frozenset((INVALID,))
    key = term[:n].lower()
    cuda, driver, arch, brand = facts
    if key == "brand":
        if not gpus:
            return frozenset((1,))
        if brand is None:
            return frozenset((0, 1, INVALID)) if op not in ("=", "!=") else frozenset((0, 1))
        if op not in ("=", "!="):
            return frozenset((INVALID,))
        return frozenset((int((brand.lower() == value.lower()) == (op == "=")),))
    if key in ("cuda", "driver", "arch"):
        if key == "arch" and not gpus:
            return frozenset((1,))
        fact = cuda if key == "cuda" else driver if key == "driver" else arch
        if fact is None:
            if any(c not in _VERSION_CHARS for c in value):
                return frozenset((INVALID,))
            return frozenset((0, 1))
        return frozenset((compare_version(fact, op, value),))
    return frozenset((INVALID,))


@lru_cache(maxsize=4096)
def evaluate(predicate: str, facts: Facts, gpus: bool) -> str:
    """``dsl_evaluate`` of one ``--require`` value: "ok", "fail", "invalid" or "unchecked"."""
    groups = [[t for t in g.split(",") if t] for g in predicate.split(" ") if g]
    memo: dict[tuple[int, int, bool], frozenset[str]] = {}

    def run(gi: int, ti: int, ret: bool) -> frozenset[str]:
        if gi == len(groups):
            return frozenset(("ok" if ret else "fail",))
        key = (gi, ti, ret)
        if key in memo:
            return memo[key]
        terms = groups[gi]
        if ti == len(terms):  # every AND term held: the whole predicate holds (ret as last set)
            out = frozenset(("ok" if ret else "fail",))
        else:
            acc: set[str] = set()
            for val in _term(terms[ti], facts, gpus):
                if val == INVALID:
                    acc.add("invalid")
                elif val:
                    acc |= run(gi, ti + 1, True)
                else:
                    acc |= run(gi + 1, 0, False)
            out = frozenset(acc)
        memo[key] = out
        return out

    outcomes = run(0, 0, True)
    if len(outcomes) == 1:
        return next(iter(outcomes))
    return "unchecked"


def failure_message(predicate: str) -> str:
    """nvidia-container-cli's message for an unsatisfied predicate (its first OR group)."""
    first = predicate.split(" ", 1)[0]
    msg = f"requirement error: unsatisfied condition: {first}"
    if first.startswith("cuda>="):
        msg += ", please update your driver to a newer version, or use an earlier cuda container"
    return msg


def _semver_num(s: str) -> bool:
    return bool(s) and all(c in _DIGITS for c in s) and (s == "0" or s[0] != "0")


def _semver_idents(s: str, numeric_no_zero: bool) -> bool:
    if not s:
        return False
    for ident in s.split("."):
        if not ident or any(not (c.isascii() and (c.isalnum() or c == "-")) for c in ident):
            return False
        if numeric_no_zero and all(c in _DIGITS for c in ident) and len(ident) > 1 and ident[0] == "0":
            return False
    return True


def cuda_major_minor(value: str, semver: bool) -> str | None:
    """``CUDA_VERSION`` → "major.minor" as the hook parses it; None when it aborts."""
    if not semver:
        # v1.0.5:nvidia-container-toolkit/container_config.go parseCudaVersion:
        # Sscanf "%d.%d.%d", then "%d.%d", then "%d".
        parts = value.split(".")
        if not 1 <= len(parts) <= 3 or not all(p and all(c in _DIGITS for c in p) for p in parts):
            return None
        return f"{int(parts[0])}.{int(parts[1]) if len(parts) > 1 else 0}"
    # v1.10.0:internal/config/image/cuda_image.go parseMajorMinorVersion: golang.org/x/mod/semver.IsValid.
    body = value[1:] if value.startswith("v") else value
    core, plus, build = body.partition("+")
    core, dash, pre = core.partition("-")
    nums = core.split(".")
    if len(nums) > 3 or not all(_semver_num(n) for n in nums):
        return None
    if (dash or plus) and len(nums) != 3:
        return None  # shorthand vMAJOR[.MINOR] takes no pre-release/build
    if dash and not _semver_idents(pre, True):
        return None
    if plus and not _semver_idents(build, False):
        return None
    if int(nums[0]) > 0xFFFFFFFF or (len(nums) > 1 and int(nums[1]) > 0xFFFFFFFF):
        return None
    return f"{nums[0]}.{nums[1] if len(nums) > 1 else '0'}"


def parse_bool(value: str) -> bool:
    """Go ``strconv.ParseBool``; invalid values read as false (the toolkit ignores the error)."""
    return value in ("1", "t", "T", "TRUE", "true", "True")
