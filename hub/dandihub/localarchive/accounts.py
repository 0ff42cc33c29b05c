"""Accounts of a local archive (``archive.json``): who exists, their status and API key."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

# The demo's accounts: one of each status the hub must handle.
DEMO_ACCOUNTS = [
    {"username": "demo", "first_name": "Demo", "last_name": "User", "status": "APPROVED"},
    {"username": "admin", "first_name": "Archive", "last_name": "Admin", "status": "APPROVED",
     "admin": True},
    {"username": "pending", "first_name": "Pending", "last_name": "User", "status": "PENDING"},
    {"username": "rejected", "first_name": "Rejected", "last_name": "User", "status": "REJECTED"},
]


def load_accounts(archive_dir: str | Path) -> list[dict]:
    path = Path(archive_dir) / "archive.json"
    if not path.exists():
        return []
    return json.loads(path.read_text()).get("users", [])


def ensure_accounts(archive_dir: str | Path, accounts=DEMO_ACCOUNTS, name="DANDI Hub demo archive"):
    """Add the missing ``accounts`` to ``archive.json``, each with a fresh random API key.

    Existing accounts keep their keys, so a demo's key stays the same across restarts.
    Returns ``{username: api_key}`` for all accounts.
    """
    path = Path(archive_dir) / "archive.json"
    data = json.loads(path.read_text()) if path.exists() else {"name": name, "users": []}
    users = {u["username"]: u for u in data.setdefault("users", [])}
    for account in accounts:
        if account["username"] not in users:
            user = {"email": f"{account['username']}@example.org", "admin": False, **account}
            user["api_key"] = secrets.token_hex(20)  # DANDI keys are 40 hex characters
            data["users"].append(user)
            users[user["username"]] = user
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return {name: user["api_key"] for name, user in users.items()}
