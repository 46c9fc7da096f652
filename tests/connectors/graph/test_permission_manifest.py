from pathlib import Path

import yaml

MANIFEST = Path(__file__).resolve().parents[3] / "infra" / "graph-permissions.yaml"


def test_every_permission_says_why_and_where_it_is_used() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    granted = manifest["application_permissions"]
    names = [permission["name"] for permission in granted]
    assert len(names) == len(set(names)), "a permission is listed twice"
    for permission in granted:
        assert permission["why"].strip(), permission["name"]
        assert permission["used_for"], permission["name"]
    refused = {permission["name"] for permission in manifest["not_requested"]}
    assert refused.isdisjoint(names), "a permission is both requested and not requested"
    # Read-write on mail and files is needed (labels, deletion); full control and directory-wide writes are not.
    assert {"Mail.ReadWrite", "Files.ReadWrite.All", "AuditLog.Read.All"} <= set(names)
    assert not {name for name in names if name.endswith("FullControl.All") or name.startswith("Directory.")}
