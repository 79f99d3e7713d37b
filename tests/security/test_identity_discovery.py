"""Clients find the object store through labkit.discovery, not the stack's internals."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import labkit.objects.endpoint as endpoint_module
from labkit.discovery import OBJECT_STORE, object_store_address
from labkit.objects.endpoint import embedded_endpoint
from labkit.objects.errors import ObjectStoreUnavailable
from labkit.settings import Settings
from labkit.stack.state import save_records


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_object_store_endpoint_does_not_import_the_stack() -> None:
    imported = _imported_modules(Path(endpoint_module.__file__))
    assert "labkit.discovery" in imported
    assert not {name for name in imported if name.startswith("labkit.stack")}, imported


def test_the_endpoint_comes_from_the_state_file_through_discovery(settings: Settings) -> None:
    with pytest.raises(ObjectStoreUnavailable, match="not running"):
        embedded_endpoint(settings)
    settings.paths.home.mkdir(parents=True)
    record = {OBJECT_STORE: {"endpoint": "127.0.0.1:9123", "url": "http://127.0.0.1:9123"}}
    save_records(settings.paths.state_file, settings.home, record)
    assert object_store_address(settings) == "127.0.0.1:9123"
    settings.paths.s3_keys_file.parent.mkdir(parents=True)
    settings.paths.s3_keys_file.write_text('{"access_key": "LKA", "secret_key": "s"}')
    endpoint = embedded_endpoint(settings)
    assert endpoint.endpoint == "127.0.0.1:9123"
    assert endpoint.url == "http://127.0.0.1:9123"
