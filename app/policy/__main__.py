"""`python -m app.policy write-schema` regenerates policy.schema.json; `check FILE...` validates policy files."""

import sys

from app.policy.json_schema import SCHEMA_PATH, schema_text
from app.policy.loader import check_policy_file


def main(argv: list[str]) -> int:
    if argv == ["write-schema"]:
        SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
        return 0
    if len(argv) >= 2 and argv[0] == "check":
        messages = [message for path in argv[1:] for message in check_policy_file(path)]
        sys.stderr.write("".join(f"{message}\n" for message in messages))
        return 1 if messages else 0
    sys.stderr.write("usage: python -m app.policy write-schema | check FILE...\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
