"""Requests to a node's monitoring endpoint (--http: /healthz, /readyz, /metrics).

With TLS the endpoint speaks HTTPS with the node's certificate, checked here against the
cluster's CA; a client certificate is presented only when asked for (as Prometheus does with
its tls_config), so that the tests can also see what a caller without one gets.
"""

import http.client
import re
import ssl


def get(node, path, pki=None, client=None, timeout=5.0):
    """GET `path` from `node` (a NodeProc with http_address). pki: the cluster's Pki, for HTTPS
    (None: plain HTTP); client: (cert, key) files to present, or None. Returns (status, body as
    text). A connection closed before any answer is tried once more on a new connection, as a
    scraper would at its next interval (seen once, on a loaded machine); raises OSError /
    ssl.SSLError when no answer comes."""
    try:
        return _get(node, path, pki, client, timeout)
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return _get(node, path, pki, client, timeout)


def _get(node, path, pki, client, timeout):
    host, port = node.http_address.rsplit(":", 1)
    if pki is None:
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    else:
        ctx = ssl.create_default_context(cafile=pki.ca)
        if client is not None:
            ctx.load_cert_chain(client[0], client[1])
        conn = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=ctx)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", errors="replace")
    finally:
        conn.close()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset of (label, value)): float} of a Prometheus text exposition; comment
    lines are skipped. Label values are unescaped."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            raise ValueError("not a sample line: %r" % line)
        labels = frozenset(
            (k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
            for k, v in _LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(metrics, name, **labels):
    """The sample `name` with exactly `labels`, or None."""
    return metrics.get((name, frozenset(labels.items())))
