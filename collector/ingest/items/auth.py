"""Validators for authentication and account events parsed from auth logs and the journal."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel

from collector.ingest.fields import Count, Port, Str, Strict, Text


def _ip(value: str) -> str:
    """Only a literal IPv4/IPv6 address, in canonical form (host names stay out of this field)."""
    return str(ipaddress.ip_address(value))


IpAddress = Annotated[Str, AfterValidator(_ip)]
Source = Literal["file", "journal"]

AuthAction = Literal[
    # sshd
    "failed_password", "failed_publickey", "failed_keyboard_interactive", "failed_hostbased", "failed_none",
    "failed_other", "invalid_user", "accepted_password", "accepted_publickey", "accepted_keyboard_interactive",
    "accepted_hostbased", "accepted_none", "accepted_other", "max_auth_attempts", "preauth_disconnect",
    "no_identification", "negotiation_failed", "bad_protocol", "pam_failure",
    # sudo
    "sudo_command", "sudo_incorrect_password", "sudo_not_in_sudoers", "sudo_command_not_allowed",
    "sudo_password_required",
    # su
    "su_success", "su_failure",
]
AccountAction = Literal[
    "user_added", "user_deleted", "user_modified", "user_renamed", "group_added", "group_deleted",
    "group_modified", "password_changed", "user_added_to_group", "user_removed_from_group",
]


class AuthEvent(Strict):
    action: AuthAction
    outcome: Literal["success", "failure"]
    user: Str | None = None
    source_ip: IpAddress | None = None
    source_port: Port | None = None
    method: Str | None = None
    process: Str | None = None
    pid: Count | None = None
    target_user: Str | None = None
    command: Text | None = None
    tty: Str | None = None
    cwd: Text | None = None
    host: Str | None = None
    log_ts: Str | None = None
    count: Count = 1
    source: Source = "file"
    raw: Text | None = None


class AccountChange(Strict):
    action: AccountAction
    user: Str | None = None
    group: Str | None = None
    uid: Count | None = None
    gid: Count | None = None
    home: Str | None = None
    shell: Str | None = None
    process: Str | None = None
    pid: Count | None = None
    host: Str | None = None
    log_ts: Str | None = None
    source: Source = "file"
    raw: Text | None = None


ITEM_MODELS: dict[str, type[BaseModel]] = {
    "auth.failure": AuthEvent,
    "auth.success": AuthEvent,
    "auth.sudo": AuthEvent,
    "auth.su": AuthEvent,
    "account.change": AccountChange,
}
