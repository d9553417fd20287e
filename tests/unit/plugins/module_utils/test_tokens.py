"""TokenCache: one token for all threads, renewed before expiry, replaced once when rejected."""

import threading

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import ApiError
from ansible_collections.fleetguard.devices.plugins.module_utils.tokens import TokenCache


class Issuer:
    def __init__(self, lifetime=7200):
        self.lifetime = lifetime
        self.issued = []

    def __call__(self):
        token = "t-%d" % (len(self.issued) + 1)
        self.issued.append(token)
        return token, self.lifetime


def test_the_token_is_reused_until_shortly_before_it_expires():
    now = [0.0]
    issuer = Issuer(lifetime=7200)
    cache = TokenCache(fetch=issuer, clock=lambda: now[0])
    assert cache.get() == "t-1"
    now[0] = 7200 - 301
    assert cache.get() == "t-1"
    now[0] = 7200 - 299
    assert cache.get() == "t-2"


def test_a_rejected_token_is_replaced_once_and_the_request_repeated():
    cache = TokenCache(fetch=Issuer())
    seen = []
    answer = cache.send(lambda token: seen.append(token) or ("bad" if token == "t-1" else "ok"),
                        rejected=lambda response: response == "bad")
    assert answer == "ok" and seen == ["t-1", "t-2"]


def test_a_token_rejected_twice_is_given_back_not_looped_on():
    cache = TokenCache(fetch=Issuer())
    seen = []
    answer = cache.send(lambda token: seen.append(token) or "bad", rejected=lambda response: response == "bad")
    assert answer == "bad" and seen == ["t-1", "t-2"]


def test_a_static_token_is_never_replaced():
    cache = TokenCache(static_token="t-given")
    seen = []
    assert cache.send(lambda token: seen.append(token) or "bad", rejected=lambda r: True) == "bad"
    assert seen == ["t-given"] and not cache.can_refresh


def test_threads_that_see_the_same_rejection_fetch_one_new_token():
    issuer = Issuer()
    cache = TokenCache(fetch=issuer)
    first = cache.get()
    threads = [threading.Thread(target=cache.replace, args=(first,)) for dummy in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert issuer.issued == ["t-1", "t-2"]


@pytest.mark.parametrize("token, lifetime, named", [
    ({"a": 1}, 7200, "its token is dict, not a string"),
    (5, 7200, "its token is int, not a string"),
    (None, 7200, "it has no token"),
    ("", 7200, "it has no token"),
    ("t-canary-token 5e1f\r\nX-Injected: 1", 7200, "characters a bearer token cannot hold"),
    ("t-canary-token-5e1f", "soon", "its lifetime 'soon' is not a number of seconds"),
    ("t-canary-token-5e1f", {"seconds": 7200}, "its lifetime {'seconds': 7200} is not a number of seconds"),
    ("t-canary-token-5e1f", True, "its lifetime True is not a number of seconds"),
    ("t-canary-token-5e1f", -5, "its lifetime -5 is not a number of seconds"),
    ("t-canary-token-5e1f", float("inf"), "its lifetime inf is not a number of seconds"),
    ("t-canary-token-5e1f", "NaN", "its lifetime 'NaN' is not a number of seconds"),
    ("t-canary-token-5e1f", int("9" * 400), "its lifetime 99999999"),
    ("t-canary-token-5e1f", 3 * 365 * 86400, "its lifetime 94608000 is not a number of seconds"),
    ("t-canary-token-5e1f", "\u0667\u0662\u0660\u0660", "is not a number of seconds"),
    ("t-canary-token-5e1f", "7_200", "its lifetime '7_200' is not a number of seconds"),
], ids=["token-object", "token-number", "no-token", "empty-token", "token-with-a-line-break", "lifetime-a-word",
        "lifetime-an-object", "lifetime-a-boolean", "lifetime-negative", "lifetime-infinite", "lifetime-nan",
        "lifetime-a-400-digit-integer", "lifetime-3-years", "lifetime-other-digits", "lifetime-underscore"])
def test_an_unusable_token_answer_fails_naming_what_is_wrong_never_the_token(token, lifetime, named):
    cache = TokenCache(fetch=lambda: (token, lifetime), clock=lambda: 0.0)
    with pytest.raises(ApiError) as caught:
        cache.get()
    assert named in str(caught.value)
    assert "canary" not in str(caught.value)


@pytest.mark.parametrize("lifetime", [7200, 7200.0, "7200", "7200.5"])
def test_a_lifetime_may_be_a_number_or_a_string_of_one(lifetime):
    now = [0.0]
    cache = TokenCache(fetch=Issuer(lifetime=lifetime), clock=lambda: now[0])
    assert cache.get() == "t-1"
    now[0] = 7200 - 301
    assert cache.get() == "t-1"
