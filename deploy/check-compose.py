#!/usr/bin/env python3
"""Validates docker-compose.yml where no Docker engine runs.

1. The file, with its variables interpolated, against the Compose Specification's JSON schema.
2. Every APP__SECTION__KEY variable a service sets names a key that service's configuration has
   (the built-in defaults in services/*/src/config.rs and shared/src/config.rs).
3. depends_on targets exist and every long-running service has a healthcheck.

Usage: python3 deploy/check-compose.py [path/to/compose-spec.json]
"""
import json
import os
import re
import sys
import tomllib
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_CANDIDATES = [ROOT.parent / "shared" / "data" / "compose-spec.json", ROOT / "deploy" / "compose-spec.json"]

# Which crate's configuration each compose service uses (by image name).
CONFIG_OF = {
    "audiostorm/user": "services/user/src/config.rs",
    "audiostorm/player": "services/player/src/config.rs",
    "audiostorm/reviews": "services/reviews/src/config.rs",
    "audiostorm/proxy": "proxy/src/config.rs",
}


def interpolate(text: str) -> str:
    def repl(m):
        name, rest = m.group(1), m.group(2) or ""
        value = os.environ.get(name)
        if value is None:
            if rest.startswith(":-") or rest.startswith("-"):
                return rest.split("-", 1)[1]
            return "placeholder"
        return value
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)((?::?[-?+])[^}]*)?\}", repl, text)


def toml_in(path: Path, const: str) -> dict:
    src = path.read_text()
    m = re.search(const + r'[^=]*=\s*r#"(.*?)"#', src, re.S)
    if not m:
        sys.exit(f"no {const} in {path}")
    return tomllib.loads(m.group(1))


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def has_key(tree: dict, parts: list) -> bool:
    for p in parts:
        if not isinstance(tree, dict) or p not in tree:
            return False
        tree = tree[p]
    return True


def main() -> int:
    schema_path = next((Path(p) for p in sys.argv[1:2]), None) or next((p for p in SCHEMA_CANDIDATES if p.exists()), None)
    doc = yaml.safe_load(interpolate((ROOT / "docker-compose.yml").read_text()))
    errors = []
    if schema_path is None:
        print("compose-spec.json not found: schema validation skipped")
    else:
        schema = json.loads(schema_path.read_text())
        for e in jsonschema.Draft7Validator(schema).iter_errors(doc):
            errors.append(f"schema: {'/'.join(map(str, e.path))}: {e.message}")

    common = toml_in(ROOT / "shared/src/config.rs", "COMMON_DEFAULTS")
    services = doc.get("services", {})
    for name, svc in services.items():
        for dep in (svc.get("depends_on") or {}):
            if dep not in services:
                errors.append(f"{name}: depends_on unknown service {dep}")
        image = (svc.get("image") or "").split(":")[0]
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        app_keys = [k for k in env if k.startswith("APP__")]
        if image in CONFIG_OF:
            one_shot = svc.get("restart") == "no"
            if not one_shot and ("healthcheck" not in svc or svc["healthcheck"].get("disable")):
                errors.append(f"{name}: no healthcheck")
            config = merge(common, toml_in(ROOT / CONFIG_OF[image], "DEFAULTS"))
            for key in app_keys:
                parts = key[len("APP__"):].lower().split("__")
                if not has_key(config, parts):
                    errors.append(f"{name}: {key} is not a configuration key of {CONFIG_OF[image]}")
        elif app_keys:
            errors.append(f"{name}: sets APP__ variables but its configuration is unknown to this check")
    for e in errors:
        print(e)
    print(f"docker-compose.yml: {len(services)} services, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
