"""Runs schemathesis's command line (contract_fuzz.rs) with one repair.

Hypothesis names each filtered strategy by parsing the source file of the
filter's lambda; for schemathesis's largest module, CPython 3.11's parser
sometimes fails ("AST constructor recursion depth mismatch"), which
schemathesis reports as an error of the operation being tested. The name
is only for messages, so a failure to find it is answered "<unknown>".
"""

import sys

try:
    import hypothesis.internal.lambda_sources as lambda_sources

    _describe = lambda_sources._lambda_description
except (ImportError, AttributeError):
    # A hypothesis that names strategies another way needs no repair.
    lambda_sources = None


def _describe_or_unknown(f, *args, **kwargs):
    try:
        return _describe(f, *args, **kwargs)
    except SystemError:
        return "lambda: <unknown>"


if lambda_sources is not None:
    lambda_sources._lambda_description = _describe_or_unknown

from schemathesis.cli import schemathesis  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "schemathesis"
    sys.exit(schemathesis())
