# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The collection's exceptions.

Every failure raised by module_utils is a FleetguardError. It carries what an operator needs to find
the request in the vendor's logs (method, path, HTTP status, API code, request/log id) and never a
credential: clients build these from response bodies and paths, never from request headers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import re


# Longest value a message repeats whole: an identifier of 10,000 characters must not flood the log.
SHOWN_MAX = 80


def shown(value):
    """`repr(value)` for a message, cut to SHOWN_MAX characters with the full length said."""
    text = repr(value)
    if len(text) <= SHOWN_MAX:
        return text
    return "%s... (%d characters)" % (text[:SHOWN_MAX], len(value) if hasattr(value, "__len__") else len(text))


# Longest value a message about a role's input repeats whole, as JSON: what the playbook's author wrote
# ("company", true, null), not Python's spelling of it.
SHOWN_JSON_MAX = 200


def shown_json(value):
    """`value` as JSON for a message (repr() when it is no JSON), cut to SHOWN_JSON_MAX characters."""
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= SHOWN_JSON_MAX else text[:SHOWN_JSON_MAX - 3] + "..."


# Longest text from an answer (a server's error message) a message repeats whole: a server may quote the
# request back, and a request can carry a value of 10,000 characters.
ANSWER_TEXT_MAX = 400


def shown_text(value):
    """Text an answer carried (a server's message), as is when short, else cut with the full length said;
    anything but a string is shown as `shown()` shows it."""
    if not isinstance(value, str):
        return shown(value)
    if len(value) <= ANSWER_TEXT_MAX:
        return value
    return "%s... (%d characters)" % (value[:ANSWER_TEXT_MAX], len(value))


def answer_text(value):
    """A field of an answer (an error's message, code or request id) as a message shows it: None when the answer
    has none (absent or empty), else shown_text()."""
    return shown_text(value) if value not in (None, "") else None


# A number as text in an answer: ASCII digits, a sign, decimals. float() also takes "1_0", "1e1", "inf", "nan" and
# digits of other scripts ("\u0661\u0660" is 10), none of which a server means as a number.
NUMBER_TEXT = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?\Z")


def finite_number(value, text=True):
    """A number an answer, a header or a state file holds, as a finite float; with `text`, a string of one too.
    Raises ValueError for anything else: a boolean, NaN, an infinity (JSON's 1e999), an integer too large for a
    float, text that is not plain ASCII digits."""
    if isinstance(value, str) and text:
        if not NUMBER_TEXT.match(value.strip()):
            raise ValueError("not a number")
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("not a number")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError("too large")
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def body_kind(body, object_kind):
    """What a parsed answer body is, for a message about an answer this collection does not understand:
    `object_kind` says what a JSON object of the wrong content is."""
    if body is None:
        return "a body that is not JSON"
    if not isinstance(body, dict):
        return "a JSON %s, not an object" % type(body).__name__
    return object_kind


class FleetguardError(Exception):
    """Base error. `str()` gives one line an operator can act on."""

    # True only for a write whose answer was lost: see TransientError.
    maybe_applied = False

    def __init__(self, message, method=None, path=None, status=None, api_code=None, request_id=None,
                 client_request_id=None):
        super(FleetguardError, self).__init__(message)
        # The id this collection sent (Graph's client-request-id): support can find a request by it even
        # when no answer came back.
        self.client_request_id = client_request_id
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.api_code = api_code
        self.request_id = request_id

    def __str__(self):
        parts = []
        if self.method and self.path:
            parts.append("%s %s" % (self.method, self.path))
        if self.status is not None:
            parts.append("HTTP %s" % self.status)
        if self.api_code not in (None, "", 0):
            parts.append("code %s" % self.api_code)
        where = " (%s)" % ", ".join(parts) if parts else ""
        ids = []
        if self.request_id:
            ids.append("request id %s" % self.request_id)
        if self.client_request_id:
            ids.append("client-request-id %s" % self.client_request_id)
        request_ids = " [%s]" % ", ".join(ids) if ids else ""
        return "%s%s%s" % (self.message, where, request_ids)

    def to_dict(self):
        """The fields a module puts into its result; no secrets can be here."""
        return dict(
            message=self.message,
            method=self.method,
            path=self.path,
            status=self.status,
            api_code=self.api_code,
            request_id=self.request_id,
            client_request_id=self.client_request_id,
        )


class InputError(FleetguardError):
    """The task's arguments cannot be acted on; raised before any request."""


class RefusedBeforeWrite(InputError):
    """A task refused before any write: `reason` says why, and the message adds that nothing was changed.
    The result's `error` carries the reason as a field of its own, for callers that never write (an audit)."""

    def __init__(self, reason, **kwargs):
        super(RefusedBeforeWrite, self).__init__("nothing was changed: " + reason, **kwargs)
        self.reason = reason

    def to_dict(self):
        return dict(super(RefusedBeforeWrite, self).to_dict(), reason=self.reason)


class LookupFailure(FleetguardError):
    """Identifiers that matched no object or more than one; raised before any write.

    `problems` is a list of dicts: {"field", "value", "reason": "missing"|"ambiguous", "candidates": [...]}.
    """

    def __init__(self, message, problems=None):
        super(LookupFailure, self).__init__(message)
        self.problems = problems or []


class ApiError(FleetguardError):
    """The API answered with an error."""


class NotFoundError(ApiError):
    """The object the request named does not exist (or, for Feishu updates, not at that version)."""


class AuthenticationError(ApiError):
    """Credentials are missing, wrong or expired and could not be refreshed."""


class TransientError(ApiError):
    """A fault that may clear on its own (429, 5xx, connection reset, timeout) that outlived its retries,
    or a write whose answer was lost.

    `maybe_applied` is True when the request may have reached the server: the caller must re-read the
    object before deciding to write again, so no change is ever written twice.
    """

    def __init__(self, message, maybe_applied=False, **kwargs):
        super(TransientError, self).__init__(message, **kwargs)
        self.maybe_applied = maybe_applied


class UncertainWrite(TransientError):
    """A write whose answer was lost and that did not show within the settle time: it may still land.

    Reported as its own outcome ("uncertain"), neither changed nor an ordinary failure.
    """

    def __init__(self, message, **kwargs):
        super(UncertainWrite, self).__init__(message, maybe_applied=True, **kwargs)
