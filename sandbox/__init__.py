"""Local emulators of the cloud APIs this collection talks to, for tests and demos.

Standard library only (the Graph emulator's certificate credentials need `cryptography`,
imported only when used). `sandbox.server` holds the HTTP layer (server, requests,
router), `sandbox.wire_log`, `sandbox.faults` and `sandbox.rate_limit` the wire log, fault rules and
rate limiter, `sandbox.tokens` the ledger of issued tokens and
`sandbox.emulator` the `Emulator` base class; each emulated API lives in its own module(s).
"""

from sandbox.feishu import FeishuSandbox
from sandbox.msgraph import GraphSandbox

__all__ = ["FeishuSandbox", "GraphSandbox"]
