"""TokenCache: one token for all threads, renewed before expiry, replaced once when rejected."""

import threading

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
