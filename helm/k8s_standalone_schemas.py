"""Kubernetes' JSON schemas for kubeconform, made standalone: kubernetes-validate's
"-local-strict" schemas refer to one _definitions.json by $ref, which kubeconform's loader does not
follow, so each kind's schema is written with its references inlined (a type that refers to itself
is left open below its first level). Used by helm/ci.sh.

    python3 k8s_standalone_schemas.py SRC_DIR DST_DIR kind[,kind...]   e.g. deployment-apps-v1
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any


def inline(node: Any, defs: dict[str, Any], seen: frozenset[str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and "#/" in ref:
            name = ref.rsplit("/", 1)[1]
            if name in seen:
                return {}
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**inline(defs[name], defs, seen | {name}), **inline(rest, defs, seen)}
        return {k: inline(v, defs, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v, defs, seen) for v in node]
    return node


def main(argv: list[str]) -> int:
    src, dst, kinds = pathlib.Path(argv[1]), pathlib.Path(argv[2]), argv[3].split(",")
    doc = json.loads((src / "_definitions.json").read_text())
    defs = doc.get("$defs") or doc["definitions"]
    dst.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        schema = json.loads((src / f"{kind}.json").read_text())
        (dst / f"{kind}.json").write_text(json.dumps(inline(schema, defs, frozenset())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
