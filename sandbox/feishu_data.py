"""The Feishu emulator's data: a generated fleet of device records, deterministic from a seed, shaped as the
`device_records` API returns them (see sandbox/feishu.py for the API)."""

import random
import time
import uuid

DESKTOP_SYSTEMS = (1, 2, 3)  # Windows, macOS, Linux
DESKTOP_IDENTIFIERS = ("serial_number", "disk_serial_number", "uuid")
MOBILE_IDENTIFIER = {4: "android_id", 5: "idfv", 6: "aaid"}  # Android, iOS, OpenHarmony
ALL_IDENTIFIERS = DESKTOP_IDENTIFIERS + tuple(MOBILE_IDENTIFIER.values())
CREATE_STRING_FIELDS = ALL_IDENTIFIERS + ("mac_address",)

RECORD_ID_BASE = 7400000000000000000  # + index: 19-digit ids like the docs' examples
DATA_EPOCH = 1735689600  # 2025-01-01: generated timestamps are deterministic from the seed
LSA_CLIENT_ID_BASE = 7520000000000000000  # lsa_info client ids: 19 digits, like 7522053803906960914

# (model, name kind) per device_system; the kind shapes the generated device_name.
MODELS = {
    1: [("ThinkPad X1 Carbon Gen 11", "LAPTOP"), ("Latitude 7440", "LAPTOP"), ("EliteBook 840 G10", "LAPTOP"),
        ("OptiPlex 7010", "DESKTOP")],
    2: [("MacBookPro18,1", "LAPTOP"), ("MacBookPro18,3", "LAPTOP"), ("MacBookAir10,1", "LAPTOP"),
        ("Mac14,13", "DESKTOP")],
    3: [("ThinkPad T14 Gen 3", "LAPTOP"), ("Precision 3660", "WORKSTATION")],
    4: [("Pixel 8", "PHONE"), ("SM-S9180", "PHONE"), ("23127PN0CC", "PHONE"), ("SM-X710", "TABLET")],
    5: [("iPhone13,2", "PHONE"), ("iPhone14,5", "PHONE"), ("iPhone15,3", "PHONE"), ("iPad13,4", "TABLET")],
    6: [("ALN-AL00", "PHONE"), ("HBN-AL80", "PHONE"), ("BRA-AL00", "TABLET")],
}
SYSTEM_WEIGHTS = {1: 34, 2: 26, 3: 8, 4: 15, 5: 14, 6: 3}
MDM_PROVIDERS = ("Workspace_ONE", "Jamf", "Intune")
CERT_ISSUERS = ("Root-CA", "FleetGuard Issuing CA 1")


def drop_empty(fields):
    """Leave out unset values the way the API omits them (None, "" and []); 0/false stay."""
    return {key: value for key, value in fields.items() if value is not None and value != "" and value != []}


def generate_records(count, seed):
    """Deterministic, realistic fleet: same (count, seed) -> same records."""
    rng = random.Random(seed)
    users = ["ou_" + f"{rng.getrandbits(128):032x}" for _user in range(max(8, count // 3))]
    records = {}
    for index in range(1, count + 1):
        # The first six cover every OS, so tests can rely on each one existing.
        system = index if index <= 6 else rng.choices(list(SYSTEM_WEIGHTS), weights=list(SYSTEM_WEIGHTS.values()))[0]
        record = _generate_record(rng, index, system, users)
        records[record["device_record_id"]] = record
    return records


def _generate_record(rng, index, system, users):
    desktop = system in DESKTOP_SYSTEMS
    model, kind = rng.choice(MODELS[system])
    certification_level = rng.choices([0, 1, 2], weights=[15, 55, 30])[0]
    managed = certification_level == 2
    created_at = DATA_EPOCH + rng.randint(0, 300 * 86400)
    latest_user = rng.choice(users)
    current_user = latest_user if rng.random() < 0.85 else None
    env_status = rng.choice([None, 1, 1, 2])
    lsa_bound = desktop and rng.random() < 0.5
    return drop_empty({
        "device_record_id": str(RECORD_ID_BASE + index),
        "version": "0",
        "current_user_id": current_user,
        "device_name": f"FG-{kind}-{index:04d}",
        "model": model,
        "device_system": system,
        "serial_number": f"C02FG{index:04d}" if desktop else None,
        "disk_serial_number": f"S5GXNF0W{index:06d}" if desktop else None,
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper() if desktop else None,
        "mac_address": _mac(rng) if desktop or system == 4 else None,
        "android_id": f"{rng.getrandbits(64):016x}" if system == 4 else None,
        "idfv": str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper() if system == 5 else None,
        "aaid": str(uuid.UUID(int=rng.getrandbits(128), version=4)) if system == 6 else None,
        "device_ownership": rng.choices([0, 1, 2], weights=[10, 30, 60])[0],
        "device_status": rng.choices([0, 1, 2], weights=[15, 65, 20])[0],
        "certification_level": certification_level,
        "device_terminal_type": 2 if desktop else 1,
        "latest_user_id": latest_user,
        "dids": [str(rng.randint(7 * 10**18, 8 * 10**18 - 1)) for _did in range(rng.randint(1, 2))],
        "is_managed": managed,
        "mdm_device_id": f"{rng.getrandbits(48):012x}" if managed else None,
        "mdm_provider_name": rng.choice(MDM_PROVIDERS) if managed else None,
        "lsa_info": _lsa_info(rng, created_at) if lsa_bound else None,
        "device_env_info": f"detect_status={env_status}" if env_status else None,
        "created_at": created_at,
        "updated_at": created_at + rng.randint(0, 60 * 86400),
        "is_public": rng.random() < 0.05,
        "source": rng.choices([1, 2], weights=[40, 60])[0],
        "cert_verified_at_unix": str((created_at + 3600) * 1000) if managed else None,
        "cert_serial_number": f"{rng.getrandbits(64):016X}" if managed else None,
        "cert_issuer": rng.choice(CERT_ISSUERS) if managed else None,
    })


def _lsa_info(rng, bound_at):
    """The endpoint-control client's line as the API returns it: client id, online state, bind time,
    last-online time, client version, e.g.
    `7522053803906960914,离线,2025/07/09 13:42:42 UTC,2025/07/18 05:09:21 UTC,v1.2.1`.
    Draws from `rng` exactly as the records generated before this format did, so every other field keeps
    its seeded value."""
    client_id = LSA_CLIENT_ID_BASE + rng.getrandbits(32) * 1000003
    state = rng.choice(["在线", "离线"])  # online, offline
    last_online = bound_at + rng.randint(0, 30 * 86400)
    version = rng.randint(10, 20)
    return f"{client_id},{state},{_lsa_time(bound_at)},{_lsa_time(last_online)},v1.{version // 10}.{version % 10}"


def _lsa_time(seconds):
    return time.strftime("%Y/%m/%d %H:%M:%S UTC", time.gmtime(seconds))


def _mac(rng):
    return ":".join(f"{byte:02x}" for byte in [0xAC, 0xDE, 0x48] + [rng.randrange(256) for _byte in range(3)])
