"""What the test suites and the benchmark read from ansible's own output, in one place."""


def plain(value):
    """ansible-inventory --list output without its markers: values the API sent are untrusted, which --list shows
    as {"__ansible_unsafe": value} (ansible-core never renders them as templates)."""
    if isinstance(value, dict):
        if list(value) == ["__ansible_unsafe"]:
            return value["__ansible_unsafe"]
        return dict((key, plain(item)) for key, item in value.items())
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
