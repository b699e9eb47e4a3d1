"""The client cannot drift from the API: every call it makes (twinlabel_client.api.CALLS) is an
operation of /api/schema/, with the same path parameters, and every field it sends is one the
operation takes."""

import re
import subprocess
import sys

import pytest

from tests import procs
from twinlabel_client.api import CALLS, SENDS


@pytest.fixture(scope="module")
def schema():
    """What /api/schema/ serves (tests/annotator/test_api_rest.py checks that endpoint itself)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _operation(schema, name):
    method, path = CALLS[name]
    assert path in schema["paths"], f"{name}: {path} is not in the schema"
    operation = schema["paths"][path].get(method.lower())
    assert operation is not None, f"{name}: the schema has no {method} {path}"
    return operation


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_call_is_an_operation_of_the_schema(schema, name):
    operation = _operation(schema, name)
    path_params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
    assert path_params == set(re.findall(r"{(\w+)}", CALLS[name][1]))


def _properties(schema, ref_or_schema):
    if "$ref" in ref_or_schema:
        ref_or_schema = schema["components"]["schemas"][ref_or_schema["$ref"].rsplit("/", 1)[-1]]
    return set(ref_or_schema.get("properties", {}))


@pytest.mark.parametrize("name", sorted(SENDS))
def test_every_field_the_client_sends_is_one_the_operation_takes(schema, name):
    operation = _operation(schema, name)
    where, fields = SENDS[name]
    if where == "query":
        known = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    else:
        content = operation.get("requestBody", {}).get("content", {})
        assert where in content, f"{name}: the schema takes {sorted(content)}, not {where}"
        known = _properties(schema, content[where]["schema"])
    assert fields <= known, f"{name}: {sorted(fields - known)} are not in the schema ({sorted(known)})"


def test_the_client_imports_no_django():
    code = "import sys, twinlabel_client.cli; assert not [m for m in sys.modules if m.split('.')[0] == 'django']"
    subprocess.run([sys.executable, "-c", code], cwd=procs.ROOT / "client", check=True)
