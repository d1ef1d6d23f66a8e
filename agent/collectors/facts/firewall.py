"""Host firewall: which front end is active and what happens to inbound traffic by default.

Looks at nftables (``nft list ruleset``), iptables (``iptables -S``), ufw (``ufw status verbose``,
else /etc/ufw/ufw.conf) and firewalld (``firewall-cmd --state`` / ``--get-default-zone`` and the
zone's target). The summary prefers the front end that manages the rules: ufw, firewalld, then raw
nftables, then iptables.

Keys of the result:
  available: bool (at least one tool could be asked); active: bool | None; backend: name | None
  default_inbound: "accept" | "drop" | "reject" | None; rule_count: int | None (of the backend)
  tools: {nftables|iptables|ufw|firewalld: {installed: bool, active: bool | None, default_inbound,
    rule_count, error?, ...}}
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.collectors.facts._common import Run, clip, exists, failure, key_values, read_text, runner_for, yes

ORDER = ("ufw", "firewalld", "nftables", "iptables")
NFT_CHAIN = re.compile(r"^\s*chain\s+(\S+)\s*\{")
NFT_HOOK = re.compile(r"type\s+filter\s+hook\s+input\b.*?(?:policy\s+(accept|drop)\s*;)?\s*$")


def collect_firewall(root: Path = Path("/"), run: Run | None = None) -> dict:
    """Firewall state (see the module docstring for the keys)."""
    runner = runner_for(root, run)
    tools = {"nftables": _nft(runner), "iptables": _iptables(runner), "ufw": _ufw(root, runner),
             "firewalld": _firewalld(root, runner)}
    asked = [t for t in tools.values() if t.get("installed")]
    backend = next((name for name in ORDER if tools[name].get("active")), None)
    chosen = tools.get(backend or "", {})
    out = {"available": bool(asked), "active": bool(backend) if asked else None, "backend": backend,
           "default_inbound": chosen.get("default_inbound"), "rule_count": chosen.get("rule_count"),
           "tools": tools}
    if not asked:
        out["error"] = "no firewall tool found (nft, iptables, ufw, firewall-cmd)"
    return out


def _nft(runner: Run) -> dict:
    result = runner(["nft", "list", "ruleset"])
    if not result.ok:
        return {"installed": not result.missing, "active": None, "error": failure("nft list ruleset", result)}
    return {"installed": True, **parse_nft(result.stdout)}


def parse_nft(text: str) -> dict:
    """Input-hook policies and rule count of an ``nft list ruleset`` listing."""
    policies: list[str] = []
    rules, depth, in_chain = 0, 0, False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if NFT_CHAIN.match(line):
            in_chain = True
        elif in_chain and line.startswith("type ") and "hook" in line:
            hook = NFT_HOOK.search(line)
            if hook:
                policies.append(hook.group(1) or "accept")
        elif in_chain and line != "}" and not line.startswith(("policy ", "comment ")):
            rules += 1
        depth += line.count("{") - line.count("}")
        if line == "}" and in_chain:
            in_chain = False
    default = None
    if policies:
        default = "drop" if "drop" in policies else "accept"
    return {"active": rules > 0 or default == "drop", "default_inbound": default, "rule_count": rules,
            "input_chains": len(policies)}


def _iptables(runner: Run) -> dict:
    result = runner(["iptables", "-S"])
    if not result.ok:
        return {"installed": not result.missing, "active": None, "error": failure("iptables -S", result)}
    return {"installed": True, **parse_iptables(result.stdout)}


def parse_iptables(text: str) -> dict:
    """Default INPUT policy and rule count of ``iptables -S``; the last INPUT rule can be a catch-all."""
    policy, rules, input_rules = None, 0, []
    for line in text.splitlines():
        parts = line.split()
        if parts[:2] == ["-P", "INPUT"] and len(parts) > 2:
            policy = parts[2].lower()
        elif parts[:1] == ["-A"]:
            rules += 1
            if parts[1:2] == ["INPUT"]:
                input_rules.append(parts)
    default = policy
    if policy == "accept" and input_rules and input_rules[-1][-2:] in (["-j", "DROP"], ["-j", "REJECT"]) \
            and len(input_rules[-1]) == 4:
        default = input_rules[-1][-1].lower()  # "-A INPUT -j DROP" closes the chain
    if default not in (None, "accept", "drop", "reject"):
        default = None
    return {"active": rules > 0 or default in ("drop", "reject"), "default_inbound": default,
            "rule_count": rules}


def _ufw(root: Path, runner: Run) -> dict:
    result = runner(["ufw", "status", "verbose"])
    if result.ok:
        return {"installed": True, **parse_ufw(result.stdout)}
    if result.missing:  # a leftover ufw.conf without ufw says nothing about the rules in force
        return {"installed": False, "active": None}
    conf = read_text(root, "/etc/ufw/ufw.conf")
    if conf is None:
        return {"installed": True, "active": None, "error": failure("ufw status", result)}
    enabled = yes(key_values(conf, sep="=").get("ENABLED"))
    defaults = key_values(read_text(root, "/etc/default/ufw") or "", sep="=")
    policy = (defaults.get("DEFAULT_INPUT_POLICY") or "").lower() or None
    return {"installed": True, "active": enabled, "default_inbound": policy if enabled else None,
            "rule_count": None, "source": "config", "error": failure("ufw status", result)}


def parse_ufw(text: str) -> dict:
    """``ufw status verbose``: Status, Default incoming policy and the number of rules."""
    active = re.search(r"^Status:\s*active", text, re.MULTILINE) is not None
    found = re.search(r"^Default:\s*(\w+)\s*\(incoming\)", text, re.MULTILINE)
    policy = {"deny": "drop", "reject": "reject", "allow": "accept"}.get(found.group(1)) if found else None
    rules = 0
    if "---" in text:
        rules = sum(1 for line in text.split("---", 1)[1].splitlines() if line.strip() and not line.startswith("-"))
    return {"active": active, "default_inbound": policy if active else None, "rule_count": rules if active else 0}


def _firewalld(root: Path, runner: Run) -> dict:
    state = runner(["firewall-cmd", "--state"])
    if state.missing:
        return {"installed": False, "active": None}
    running = state.ok and state.stdout.strip() == "running"
    out: dict = {"installed": True, "active": running, "default_inbound": None, "rule_count": None}
    if not running:
        out["state"] = clip((state.stdout or state.stderr).strip() or state.error, 256)
        return out
    zone_result = runner(["firewall-cmd", "--get-default-zone"])
    zone = zone_result.stdout.strip() if zone_result.ok else None
    out["default_zone"] = clip(zone, 256)
    if zone and re.fullmatch(r"[\w.-]+", zone):
        out["default_inbound"] = firewalld_target(root, zone)
    return out


def firewalld_target(root: Path, zone: str) -> str | None:
    """The zone's target as an inbound policy; firewalld's "default" rejects what no rule allows."""
    for base in ("/etc/firewalld/zones", "/usr/lib/firewalld/zones"):
        if exists(root, f"{base}/{zone}.xml"):
            found = re.search(r'<zone[^>]*\btarget="([^"]+)"', read_text(root, f"{base}/{zone}.xml") or "")
            target = found.group(1).upper() if found else "DEFAULT"
            return {"ACCEPT": "accept", "DROP": "drop"}.get(target, "reject")
    return "reject"
