"""The ``hardware`` section: CPU, memory, disks, DMI identity and a cheap virtualization guess."""

from __future__ import annotations

from pathlib import Path

import psutil

from agent.collectors.inventory._files import clip, read_text, read_value, under

FIELDS: tuple[str, ...] = (
    "cpu_model", "cpu_cores", "cpu_threads", "ram_bytes", "swap_bytes", "disks", "vendor",
    "product_name", "product_serial", "board_serial", "virtualization",
)

DMI = "/sys/class/dmi/id/"
# psutil's all=False already drops nodev filesystems; these are real-device types that are still
# not "disks" a person cares about (snap images, ISO mounts).
SKIPPED_FS = frozenset({"squashfs", "iso9660", "udf"})
CPU_MODEL_KEYS = ("model name", "cpu model", "processor", "hardware")  # x86 first, then ARM/MIPS
MAX_DISKS = 256
# DMI sys_vendor / product_name fragments -> systemd-detect-virt style names.
VM_VENDORS = (
    ("qemu", "qemu"), ("kvm", "kvm"), ("vmware", "vmware"), ("virtualbox", "oracle"),
    ("innotek", "oracle"), ("xen", "xen"), ("amazon ec2", "amazon"), ("google", "google"),
    ("microsoft corporation", "microsoft"), ("parallels", "parallels"), ("bochs", "bochs"),
)
# Firmware placeholders that mean "no value"; reporting them would make unrelated hosts look alike.
DMI_PLACEHOLDERS = frozenset({
    "", "none", "n/a", "na", "not specified", "not applicable", "to be filled by o.e.m.",
    "default string", "system serial number", "system product name", "0", "00000000",
    "0123456789", "unknown",
})
CONTAINER_MARKERS = ("/.dockerenv", "/run/.containerenv")
CONTAINER_CGROUP_WORDS = ("docker", "lxc", "kubepods", "containerd", "libpod")


def cpu_model(root: Path) -> str | None:
    """First model line of /proc/cpuinfo; the key differs by architecture."""
    text = read_text(root, "/proc/cpuinfo") or ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        # "processor" is a bare index on x86; only a non-numeric value is a model name.
        if sep and key in CPU_MODEL_KEYS and key not in found and not value.strip().isdigit():
            found[key] = value.strip()
        if "model name" in found:
            break
    return next((clip(found[k]) for k in CPU_MODEL_KEYS if found.get(k)), None)


def disks() -> list[dict]:
    """Mounted block-device filesystems with usage, one entry per device (bind mounts collapse)."""
    seen: set[str] = set()
    rows: list[dict] = []
    for part in psutil.disk_partitions(all=False):
        if part.device in seen or part.fstype in SKIPPED_FS:
            continue
        seen.add(part.device)
        try:
            usage = psutil.disk_usage(part.mountpoint)
            total, used = usage.total, usage.used
        except OSError:  # a stale network mount or a permission-restricted path
            total = used = None
        rows.append({"device": clip(part.device), "mountpoint": clip(part.mountpoint),
                     "fstype": clip(part.fstype or None), "total_bytes": total, "used_bytes": used})
    rows.sort(key=lambda d: d["mountpoint"])  # stable order keeps the section hash stable
    return rows[:MAX_DISKS]


def virtualization(root: Path) -> str | None:
    """``container`` when a container marker is present, else a hypervisor name from DMI, else None."""
    if any(under(root, marker).exists() for marker in CONTAINER_MARKERS):
        return "container"
    if read_value(root, "/run/systemd/container"):
        return "container"
    cgroup = (read_text(root, "/proc/1/cgroup") or "").lower()
    if any(word in cgroup for word in CONTAINER_CGROUP_WORDS):
        return "container"
    dmi = " ".join(filter(None, (read_value(root, DMI + "sys_vendor"),
                                 read_value(root, DMI + "product_name")))).lower()
    return next((name for fragment, name in VM_VENDORS if fragment in dmi), None)


def dmi_value(root: Path, name: str) -> str | None:
    """A /sys/class/dmi/id value, None when unreadable or a firmware placeholder."""
    value = read_value(root, DMI + name)
    return None if value is None or value.strip().lower() in DMI_PLACEHOLDERS else value


def memory_totals() -> tuple[int | None, int | None]:
    """(RAM bytes, swap bytes)."""
    try:
        return psutil.virtual_memory().total, psutil.swap_memory().total
    except (OSError, RuntimeError):
        return None, None


def collect_hardware(root: Path = Path("/")) -> list[dict]:
    """The single ``hardware`` row; DMI serials are None when not readable (root-only on hardware)."""
    ram, swap = memory_totals()
    return [{
        "cpu_model": cpu_model(root),
        "cpu_cores": psutil.cpu_count(logical=False),
        "cpu_threads": psutil.cpu_count(logical=True),
        "ram_bytes": ram,
        "swap_bytes": swap,
        "disks": disks(),
        "vendor": dmi_value(root, "sys_vendor"),
        "product_name": dmi_value(root, "product_name"),
        "product_serial": dmi_value(root, "product_serial"),
        "board_serial": dmi_value(root, "board_serial"),
        "virtualization": virtualization(root),
    }]
