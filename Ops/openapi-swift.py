#!/usr/bin/env python3
"""Writes Gateway/OpenAPIDocument.swift from docs/openapi.json, the committed OpenAPI 3.1 document of hume-gateway.

Edit docs/openapi.json, then run `python3 Ops/openapi-swift.py`; GatewayTests checks that the served document and the
committed one are the same text.
"""
import json
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent
text = (root / "docs/openapi.json").read_text(encoding="utf-8").rstrip("\n")
json.loads(text)  # refuse to embed a document that is not JSON
swift = ("// The OpenAPI 3.1 document GET /v1/openapi.json serves: docs/openapi.json, embedded by Ops/openapi-swift.py\n"
         "// (edit the JSON, then run the script; a test checks that the two are the same text).\n"
         "enum OpenAPIDocument {\n    static let json = #\"\"\"\n" + text + "\n\"\"\"#\n}\n")
(root / "Gateway/OpenAPIDocument.swift").write_text(swift, encoding="utf-8")
