"""Test doubles for gd-doctor's network path, importable by any test (see README.md).

* :mod:`tests.fakes.imds`: :class:`FakeImds`, an IMDS HTTP server on loopback with token modes,
  status overrides, delays, hop-limit behaviour and a request log.
* :mod:`tests.fakes.dns`: :class:`FakeResolver` (an injected resolver) and :class:`FakeDnsServer`
  (a UDP DNS server for tests that run the real system resolver inside a test-made netns).
* :mod:`tests.fakes.tls`: :class:`TlsEndpoint`, a trustme-made HTTPS server that answers like an
  AWS endpoint (or like something else), with valid, untrusted, wrong-name or expired certificates;
  :class:`ConnectProxy`, a minimal HTTP CONNECT proxy; :func:`closed_port`.

Nothing here listens beyond 127.0.0.1 unless a test passes another address inside its own netns.
"""
