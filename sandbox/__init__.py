"""Local emulators of the cloud APIs this collection talks to, for tests and demos.

Standard library only (the Graph emulator's certificate credentials need `cryptography`,
imported only when used). `sandbox.server` holds the reusable machinery (HTTP server,
router, wire log, fault plan, rate limiter), `sandbox.tokens` the ledger of issued tokens and
`sandbox.emulator` the `Emulator` base class; each emulated API lives in its own module(s).
"""

from sandbox.feishu import FeishuSandbox
from sandbox.msgraph import GraphSandbox

__all__ = ["FeishuSandbox", "GraphSandbox"]
