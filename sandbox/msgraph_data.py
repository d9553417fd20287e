"""The Graph `device` resource's property tables and a deterministic generated fleet:
devices (v1.0 properties plus the beta Project Rome ones) and the users they are registered to.
"""

import base64
import datetime
import random
import string
import time
import uuid

# v1.0 properties in the order Graph returns them
# (https://learn.microsoft.com/en-us/graph/api/resources/device?view=graph-rest-1.0);
# createdDateTime is not in the schema but shows up in real responses.
V1_PROPERTIES = (
    "id", "deletedDateTime", "accountEnabled", "approximateLastSignInDateTime", "complianceExpirationDateTime",
    "createdDateTime", "deviceCategory", "deviceId", "deviceMetadata", "deviceOwnership", "deviceVersion",
    "displayName", "enrollmentProfileName", "enrollmentType", "isCompliant", "isManaged", "isManagementRestricted",
    "isRooted", "managementType", "manufacturer", "mdmAppId", "model", "onPremisesLastSyncDateTime",
    "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "operatingSystem", "operatingSystemVersion",
    "physicalIds", "profileType", "registrationDateTime", "systemLabels", "trustType", "alternativeSecurityIds",
    "extensionAttributes",
)
SELECT_ONLY = ("isManagementRestricted", "onPremisesSecurityIdentifier")  # returned only when $select-ed
# Project Rome properties: beta only, filled in for devices with a registered user. manufacturer and
# model are shared with v1.0.
ROME_PROPERTIES = ("name", "manufacturer", "model", "kind", "status", "platform")
ROME_ONLY = ("name", "kind", "status", "platform")
EXTENSION_KEYS = tuple(f"extensionAttribute{number}" for number in range(1, 16))
EXTENSION_VALUE_MAX = 1024
DISPLAY_NAME_MAX = 256

INTUNE_APP_ID = "0000000a-0000-0000-c000-000000000000"
TENANT_DOMAIN = "fleetguard.onmicrosoft.com"
FIRST_REGISTRATION = datetime.datetime(2023, 1, 9, 8, 0, tzinfo=datetime.timezone.utc)
# Days a device in daily use may look idle: Graph moves approximateLastSignInDateTime only when the stored value
# is more than about 14 days old (https://learn.microsoft.com/en-us/entra/identity/devices/manage-stale-devices).
RECENT_IDLE_DAYS = (0, 1, 2, 5, 9, 30)

OS_WEIGHTS = {"Windows": 55, "MacMDM": 15, "iOS": 13, "Android": 12, "Linux": 5}
OS_PREFIX = {"Windows": "WS", "MacMDM": "MAC", "iOS": "IOS", "Android": "AND", "Linux": "LNX"}
OS_VERSIONS = {
    "Windows": ("10.0.19045.4529", "10.0.22631.3880", "10.0.22631.4460", "10.0.26100.2314"),
    "MacMDM": ("13.6.9", "14.6.1", "15.1.1"),
    "iOS": ("16.7.10", "17.6.1", "18.1.1"),
    "Android": ("13.0", "14.0", "15.0"),
    "Linux": ("22.04", "24.04"),
}
# (manufacturer, model, Rome kind) per operating system
HARDWARE = {
    "Windows": (("Dell Inc.", "Latitude 7440", "Laptop"), ("LENOVO", "21HMCTO1WW", "Laptop"),
                ("HP", "HP EliteBook 840 G10 Notebook PC", "Laptop"), ("Microsoft Corporation", "Surface Laptop 5", "Laptop"),
                ("Dell Inc.", "OptiPlex 7010", "Desktop")),
    "MacMDM": (("Apple", "MacBook Pro (14-inch, 2023)", "Laptop"), ("Apple", "MacBook Air (M2, 2022)", "Laptop"),
               ("Apple", "Mac mini (2023)", "Desktop")),
    "iOS": (("Apple", "iPhone 15 Pro", "Phone"), ("Apple", "iPhone 14", "Phone"),
            ("Apple", "iPad Pro (11-inch) (4th generation)", "Tablet")),
    "Android": (("samsung", "SM-S918B", "Phone"), ("Google", "Pixel 8", "Phone"), ("motorola", "moto g54 5G", "Phone")),
    "Linux": ((None, None, "Desktop"),),
}
ROME_PLATFORM = {"Windows": "Windows", "MacMDM": "macOS", "iOS": "iOS", "Android": "Android", "Linux": "Linux"}
ENROLLMENT = {  # managed devices: (enrollmentType, deviceOwnership, enrollmentProfileName) choices
    "Windows": (("AzureDomainJoined", "Company", None), ("OnPremiseCoManaged", "Company", None),
                ("WindowsAutoEnrollment", "Company", "FG Autopilot")),
    "MacMDM": (("AppleBulkWithUser", "Company", "FG Corporate macOS"),),
    "iOS": (("AppleBulkWithUser", "Company", "FG Corporate iOS"), ("UserEnrollment", "Personal", None)),
    "Android": (("AndroidEnterpriseFullyManaged", "Company", "FG Fully Managed"),
                ("AndroidEnterpriseWorkProfile", "Personal", None)),
    "Linux": (),
}
FIRST_NAMES = ("Ana", "Ben", "Chen", "Dana", "Emeka", "Fatima", "Gustav", "Hana", "Ivan", "Jun", "Kofi", "Lena",
               "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Wei", "Yara", "Zoe")
LAST_NAMES = ("Almeida", "Brennan", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
              "Kowalski", "Li", "Moreau", "Nakamura", "O'Brien", "Petrov", "Rossi", "Schmidt", "Tanaka", "Virtanen")
EXTENSION_SAMPLES = {
    "extensionAttribute1": ("BYOD-Device", "Corp-Device"),
    "extensionAttribute2": ("CC-1042", "CC-2210", "CC-3301"),
    "extensionAttribute3": ("Berlin", "Shanghai", "Austin"),
}


def graph_time(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_guid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def empty_extension_attributes():
    return {key: None for key in EXTENSION_KEYS}


def base_device(device_id, object_id, display_name, operating_system="Windows", operating_system_version=None):
    """A minimal registered device: every v1.0 and Rome property present, realistic nulls."""
    now = graph_time(datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0))
    device = {name: None for name in V1_PROPERTIES + ROME_ONLY}
    device.update({
        "id": object_id,
        "accountEnabled": True,
        "createdDateTime": now,
        "deviceId": device_id,
        "deviceVersion": 2,
        "displayName": display_name,
        "isRooted": False,
        "operatingSystem": operating_system,
        "operatingSystemVersion": operating_system_version or OS_VERSIONS.get(operating_system, ("1.0",))[-1],
        "physicalIds": [],
        "profileType": "RegisteredDevice",
        "registrationDateTime": now,
        "systemLabels": [],
        "trustType": "AzureAd" if operating_system == "Windows" else "Workplace",
        "alternativeSecurityIds": [],
        "extensionAttributes": empty_extension_attributes(),
    })
    return device


def generate_fleet(count, seed, now=None):
    """Deterministic users and devices: same (count, seed) -> same data, except the sign-in times, which are
    ages counted back from the UTC day of `now` (epoch seconds; default: the current time), so that a fleet
    generated on any day has the same spread of recent, idle and stale devices.

    Returns (devices by object id, users by object id, user object id -> registered device ids).
    """
    moment = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.timezone.utc)
    today = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    users = _generate_users(rng, max(4, count // 4))
    user_ids = list(users)
    devices, user_devices, names = {}, {user_id: [] for user_id in user_ids}, set()
    operating_systems = list(OS_WEIGHTS)
    for index in range(1, count + 1):
        # The first five cover every operating system, so tests can rely on each one existing.
        if index <= len(operating_systems):
            operating_system = operating_systems[index - 1]
        else:
            operating_system = rng.choices(operating_systems, weights=list(OS_WEIGHTS.values()))[0]
        owner = users[rng.choice(user_ids)] if rng.random() < 0.6 else None
        device = _generate_device(rng, index, operating_system, owner, names, today)
        devices[device["id"]] = device
        if owner:
            user_devices[owner["id"]].append(device["id"])
    return devices, users, user_devices


def _generate_users(rng, count):
    users, taken = {}, set()
    for _user in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{first}.{last.replace(chr(39), '')}".lower()
        upn, suffix = f"{local}@{TENANT_DOMAIN}", 2
        while upn in taken:
            upn, suffix = f"{local}{suffix}@{TENANT_DOMAIN}", suffix + 1
        taken.add(upn)
        user_id = new_guid(rng)
        users[user_id] = {"id": user_id, "userPrincipalName": upn, "displayName": f"{first} {last}"}
    return users


def _generate_device(rng, index, operating_system, owner, names, today):
    manufacturer, model, kind = rng.choice(HARDWARE[operating_system])
    registered = FIRST_REGISTRATION + datetime.timedelta(minutes=rng.randint(0, 900 * 24 * 60))
    last_sign_in = _last_sign_in(rng, registered, today)
    trust_type = _trust_type(rng, operating_system)
    managed = operating_system != "Linux" and rng.random() < (0.9 if trust_type != "Workplace" else 0.6)
    enrollment = rng.choice(ENROLLMENT[operating_system]) if managed else (None, None, None)
    hybrid = trust_type == "ServerAd"
    object_id, device_id = new_guid(rng), new_guid(rng)
    device = base_device(
        device_id, object_id, _display_name(rng, index, operating_system, owner, names),
        operating_system, rng.choice(OS_VERSIONS[operating_system]),
    )
    device.update({
        "accountEnabled": rng.random() < 0.93,
        "approximateLastSignInDateTime": graph_time(last_sign_in) if last_sign_in else None,
        "createdDateTime": graph_time(registered),
        "registrationDateTime": graph_time(registered),
        "deviceCategory": "Corporate Laptops" if operating_system == "Windows" and rng.random() < 0.1 else None,
        "enrollmentType": enrollment[0],
        "deviceOwnership": enrollment[1],
        "enrollmentProfileName": enrollment[2],
        "isManaged": managed,
        "isCompliant": (rng.random() < 0.85) if managed else None,
        "managementType": "MDM" if managed else None,
        "mdmAppId": INTUNE_APP_ID if managed else None,
        # Unmanaged registrations usually report no hardware details.
        "manufacturer": manufacturer if managed or trust_type != "Workplace" else None,
        "model": model if managed or trust_type != "Workplace" else None,
        "trustType": trust_type,
        "onPremisesSyncEnabled": True if hybrid else None,
        "onPremisesLastSyncDateTime": graph_time((last_sign_in or today) - datetime.timedelta(hours=rng.randint(1, 30)))
        if hybrid else None,
        "onPremisesSecurityIdentifier": f"S-1-5-21-{rng.randint(10**9, 4 * 10**9)}-{rng.randint(10**9, 4 * 10**9)}-"
        f"{rng.randint(10**9, 4 * 10**9)}-{rng.randint(1100, 99999)}" if hybrid else None,
        "physicalIds": _physical_ids(rng, device_id, autopilot=enrollment[2] == "FG Autopilot")
        if operating_system == "Windows" else [],
        "alternativeSecurityIds": [{"type": 2, "identityProvider": None, "key": _alternative_key(rng)}],
        "extensionAttributes": _extension_attributes(rng),
    })
    if owner:
        first_name = owner["displayName"].split()[0]
        device.update({
            "name": f"{first_name}-{(model or operating_system).split()[0]}",
            "manufacturer": device["manufacturer"] or manufacturer,
            "model": device["model"] or model,
            "kind": kind,
            "status": rng.choice(("Online", "Offline", "Unknown")),
            "platform": ROME_PLATFORM[operating_system],
        })
    return device


def _last_sign_in(rng, registered, today):
    """When the device last signed in, or None (never: Graph keeps null, which means "unknown").

    About 4 % never signed in, 56 % signed in within the last 30 days, 12 % one to three months ago and 28 %
    90 to 400 days ago. The draws from `rng` are the ones the fleet made before these ages existed (one
    random(), then a choice or a randint, then the minutes), so every other property keeps its seeded value.
    """
    draw = rng.random()
    idle_days = rng.choice(RECENT_IDLE_DAYS) if draw < 0.85 else rng.randint(90, 400)
    minutes = rng.randint(0, 1440)
    if draw < 0.04:
        return None
    if 0.60 <= draw < 0.72:
        idle_days = 31 + int((draw - 0.60) / 0.12 * 59)  # 31..89: idle, not yet stale at 90 days
    elif 0.72 <= draw < 0.85:
        idle_days = 90 + int((draw - 0.72) / 0.13 * 311)  # 90..400
    return max(registered, today - datetime.timedelta(days=idle_days, minutes=minutes))


def _trust_type(rng, operating_system):
    if operating_system == "Windows":
        return rng.choices(("AzureAd", "ServerAd", "Workplace"), weights=(50, 30, 20))[0]
    if operating_system == "MacMDM":
        return "AzureAd" if rng.random() < 0.2 else "Workplace"
    return "Workplace"


def _display_name(rng, index, operating_system, owner, names):
    """FG-<OS>-<index>, except every ninth device, which gets a name people actually give devices."""
    name = f"FG-{OS_PREFIX[operating_system]}-{index:04d}"
    if index % 9 == 0:
        first_name = owner["displayName"].split()[0] if owner else rng.choice(FIRST_NAMES)
        realistic = {
            "Windows": "DESKTOP-" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _char in range(7)),
            "MacMDM": f"{first_name}'s MacBook Pro",
            "iOS": f"{first_name}'s iPhone",
            "Android": f"Galaxy S23 ({first_name})",
            "Linux": f"ubuntu-{first_name.lower()}",
        }[operating_system]
        if realistic not in names:
            name = realistic
    names.add(name)
    return name


def _physical_ids(rng, device_id, autopilot=False):
    """A Windows device's physical ids; a Windows Autopilot device also carries its `[ZTDID]` (derived from the
    deviceId, not drawn from `rng`, so the fleet's other values keep their seeded values)."""
    numbers = [rng.randint(10**18, 10**19 - 1) for _number in range(4)]
    ids = [
        f"[USER-GID]:{device_id}:{numbers[0]}",
        f"[GID]:g:{numbers[1]}",
        f"[USER-HWID]:{device_id}:{numbers[2]}",
        f"[HWID]:h:{numbers[3]}",
    ]
    if autopilot:
        ids.append(f"[ZTDID]:{uuid.uuid5(uuid.NAMESPACE_OID, device_id)}")
    return ids


def _alternative_key(rng):
    thumbprint = "".join(rng.choice("0123456789ABCDEF") for _digit in range(40))
    return base64.b64encode(f"X509:<SHA1-TP-PUBKEY>{thumbprint}".encode("utf-16-le")).decode("ascii")


def _extension_attributes(rng):
    attributes = empty_extension_attributes()
    for key, samples in EXTENSION_SAMPLES.items():
        if rng.random() < 0.2:
            attributes[key] = rng.choice(samples)
    return attributes
